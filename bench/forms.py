"""Extract HTML forms (action, method, inputs, submit buttons) with the stdlib HTML parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser


@dataclass
class Form:
    """One <form>: attribute values are already HTML-unescaped."""

    action: str
    method: str
    hidden: list[tuple[str, str]] = field(default_factory=list)
    input_types: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)

    @property
    def has_password(self) -> bool:
        return "password" in self.input_types.values()

    def has_button(self, name: str, value: str) -> bool:
        return (name, value) in self.buttons


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k.lower(): (v or "") for k, v in attrs}
        if tag == "form":
            self._current = Form(action=a.get("action", ""), method=(a.get("method") or "get").upper())
            self.forms.append(self._current)
            return
        form = self._current
        if form is None:
            return
        name = a.get("name", "")
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            if name:
                form.input_types[name] = kind
            if kind == "hidden" and name:
                form.hidden.append((name, a.get("value", "")))
            elif kind == "submit" and name:
                form.buttons.append((name, a.get("value", "")))
        elif tag == "button":
            if (a.get("type") or "submit").lower() == "submit" and name:
                form.buttons.append((name, a.get("value", "")))
        elif tag in ("select", "textarea") and name:
            form.input_types[name] = tag

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def parse_forms(html: str) -> list[Form]:
    """All forms of a page, in document order."""
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms
