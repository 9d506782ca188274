from django import forms


class DemoForm(forms.Form):
    seconds = forms.IntegerField(min_value=1, max_value=600, initial=10,
                                 help_text="How long the demo task works (1 to 600 seconds).")
    fail = forms.ChoiceField(
        required=False,
        choices=[("", "Succeed"), ("errors", "Fail with errors (FAILURE + Ignore)"),
                 ("raise", "Fail by raising")],
    )


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'nightly sync script'.")
