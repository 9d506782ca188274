"""Text a request carries must be characters: a lone surrogate (half of a UTF-16 pair, such as "\\ud800"
in JSON, or a form declared utf-7) cannot be stored, encoded or sent, so it is refused with a 400 in words
where the request is read, not met as a 500 further in."""
import re

from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy

from project.middleware import wants_json

LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")  # a str holds a pair as one code point: any of these is alone
LONE_SURROGATE_MESSAGE = gettext_lazy(
    "The request holds a lone surrogate (such as \\ud800): half of a character, which cannot be stored. "
    "Send valid Unicode text.")


def holds_lone_surrogate(value):
    """Whether `value` (text, or JSON's lists and objects of it, keys included) holds a lone surrogate."""
    pending = [value]
    while pending:  # a loop, not recursion: JSON may be nested as deep as its parser allows
        value = pending.pop()
        if isinstance(value, str):
            if LONE_SURROGATE.search(value):
                return True
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False


class LoneSurrogateMiddleware:
    """Refuse, with a 400 in words, a query string or form whose keys or values hold a lone surrogate.

    Django decodes them in the charset the request declares, and some (utf-7, unicode_escape) can
    produce one; every form of the site is covered here. JSON bodies are checked where they are parsed
    (exports.web.api.json_object).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view, args, kwargs):
        try:
            forms = [request.GET, request.POST] if request.method == "POST" else [request.GET]
        except Exception:  # a body too large or malformed: the view meets the same error and answers it
            return None
        if not any(holds_lone_surrogate([key, *values]) for form in forms for key, values in form.lists()):
            return None
        if wants_json(request):
            return JsonResponse({"error": str(LONE_SURROGATE_MESSAGE)}, status=400)
        return render(request, "bad_request.html", {"message": LONE_SURROGATE_MESSAGE}, status=400)
