from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from soil.util import start_download

from .forms import DemoForm
from .tasks import DEMO_FILE_EXPIRY, demo_sleep


@staff_member_required
def demo(request):
    """Start the demo task and go to its progress page (staff only: it occupies a worker for minutes)."""
    form = DemoForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        download = start_download(
            demo_sleep,
            kwargs={"seconds": form.cleaned_data["seconds"], "fail": form.cleaned_data["fail"] or None},
            owner_ids=[request.user.pk],
            expiry=DEMO_FILE_EXPIRY,
            message=_("Demo task"),
        )
        return redirect("retrieve_download", download.download_id)
    return render(request, "demo.html", {"form": form}, status=400 if form.errors else 200)

