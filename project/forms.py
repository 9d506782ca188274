from django import forms
from django.utils.translation import gettext_lazy as _


class DemoForm(forms.Form):
    seconds = forms.IntegerField(min_value=1, max_value=600, initial=10, label=_("Seconds"),
                                 help_text=_("How long the demo task works (1 to 600 seconds)."))
    fail = forms.ChoiceField(
        required=False, label=_("Fail"),
        choices=[("", _("Succeed")), ("errors", _("Fail with errors (FAILURE + Ignore)")),
                 ("raise", _("Fail by raising"))],
    )

