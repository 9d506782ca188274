"""Password reset as a person goes through it: the login page's link, the emailed link, a new password,
logging in with it; the project's own pages, in French too."""
import re

import pytest


@pytest.mark.browser
def test_a_forgotten_password_is_reset_through_the_emailed_link(page, live_server, alice, mailoutbox):
    alice.email = "alice@example.com"
    alice.save(update_fields=["email"])
    page.goto(f"{live_server.url}/accounts/login/")
    page.click("text=Forgotten your login credentials?")
    page.fill("input[name=email]", "alice@example.com")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/accounts/password_reset/done/")
    (message,) = mailoutbox
    assert message.to == ["alice@example.com"]
    link = re.search(r"http://\S+/accounts/reset/\S+/\S+/", message.body).group()

    page.goto(link)  # which moves the token into the session and redirects to .../set-password/
    page.fill("input[name=new_password1]", "a-new-password-456")
    page.fill("input[name=new_password2]", "a-new-password-456")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/accounts/reset/done/")
    page.click("main a:text('Log in')")
    page.fill("input[name=username]", alice.username)
    page.fill("input[name=password]", "a-new-password-456")
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.goto(link)  # a link works once
    assert page.locator("h1").inner_text() == "Password reset unsuccessful"


@pytest.mark.django_db
def test_the_reset_pages_are_the_sites_own_and_speak_french(client):
    page = client.get("/accounts/password_reset/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert 'class="breadcrumbs"' not in page  # not Django admin's
    assert "Mot de passe perdu" in page and "Réinitialiser mon mot de passe" in page
    page = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Identifiants de connexion oubliés" in page
    page = client.get("/accounts/reset/done/", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Vous pouvez maintenant vous connecter" in page


@pytest.mark.django_db
def test_the_reset_email_is_signed_with_the_products_name_not_the_host(client, alice, mailoutbox):
    alice.email = "alice@example.com"
    alice.save(update_fields=["email"])
    client.post("/accounts/password_reset/", {"email": "alice@example.com"}, HTTP_HOST="127.0.0.1:8201")
    (message,) = mailoutbox
    assert message.subject == "Password reset on Exports"
    assert "The Exports team" in message.body and "127.0.0.1:8201 team" not in message.body
    assert "http://127.0.0.1:8201/accounts/reset/" in message.body  # the link still leads to this server
