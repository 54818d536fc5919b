"""Interface language: locale selection (ui_locales, cookie, Accept-Language), switch route, catalogs."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Blueprint, Flask, abort, current_app, g, has_request_context, redirect, request, url_for
from flask_babel import Babel, get_locale, refresh
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent.parent
TRANSLATIONS_DIR = ROOT / "translations"

SUPPORTED_LOCALES: tuple[str, ...] = ("zh", "en")
HTML_LANG = {"zh": "zh-CN", "en": "en"}
LANG_COOKIE = "lang"  # remembered choice (1 year): after ui_locales, before Accept-Language
# the same choice for this browser session only: it beats ui_locales, so that switching language
# in the middle of a sign-in (whose transaction carries the client's ui_locales) takes effect
LANG_SESSION_COOKIE = "lang_session"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
_MAX_UI_LOCALES_LENGTH = 256

bp = Blueprint("i18n", __name__)


def normalize_locale(tag: str | None) -> str | None:
    """Map a BCP 47 tag ("zh-CN", "zh-Hans", "en_US", ...) to a supported code, or None."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in SUPPORTED_LOCALES else None


def first_supported(tags: Iterable[str]) -> str | None:
    """The first tag, in the caller's order of preference, that maps to a supported code."""
    for tag in tags:
        code = normalize_locale(tag)
        if code is not None:
            return code
    return None


def _ui_locales_value() -> str | None:
    """`ui_locales` from the view (`g.ui_locales`), then the query string, then a posted form."""
    stored = g.get("ui_locales")
    if isinstance(stored, str) and stored:
        return stored
    if isinstance(stored, (list, tuple)) and stored:
        return " ".join(str(item) for item in stored)
    value = request.args.get("ui_locales")
    if value:
        return value
    if request.method == "POST" and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        try:
            return request.form.get("ui_locales") or None
        except HTTPException:  # e.g. 413 while rendering the error page for that very request
            return None
    return None


def select_locale() -> str:
    """A switch made in this browser session, OIDC `ui_locales` (Core 3.1.2.1), the `lang` cookie,
    Accept-Language, then the default."""
    if not has_request_context():  # e.g. a CLI command or a background job
        return str(current_app.config.get("IDP_DEFAULT_LOCALE", SUPPORTED_LOCALES[0]))
    code = normalize_locale(request.cookies.get(LANG_SESSION_COOKIE))
    if code is not None:
        return code
    ui_locales = _ui_locales_value()
    if ui_locales:
        code = first_supported(ui_locales[:_MAX_UI_LOCALES_LENGTH].split())
        if code is not None:
            return code
    code = normalize_locale(request.cookies.get(LANG_COOKIE))
    if code is not None:
        return code
    # werkzeug keeps the accepted values sorted by quality, best first
    code = first_supported(value for value, quality in request.accept_languages if quality > 0)
    if code is not None:
        return code
    return str(current_app.config.get("IDP_DEFAULT_LOCALE", SUPPORTED_LOCALES[0]))


def set_ui_locales(value: str | None) -> None:
    """For views: use this request's (or login transaction's) `ui_locales`, even after a lookup."""
    g.ui_locales = value
    refresh()


def get_locale_code() -> str:
    """The current interface language: "zh" or "en" (the default locale outside a request)."""
    locale = get_locale()
    code = normalize_locale(str(locale)) if locale is not None else None
    if code is None:
        try:
            code = normalize_locale(str(current_app.config.get("IDP_DEFAULT_LOCALE")))
        except RuntimeError:  # no application context
            code = None
    return code or SUPPORTED_LOCALES[0]


def safe_next(target: str | None) -> str:
    """A local path to go back to: must start with one "/" (not "//" or "/\\"), else "/"."""
    if not target or len(target) > 2048 or not target.startswith("/") or target[1:2] in ("/", "\\"):
        return "/"
    if "\\" in target or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def _current_location() -> str:
    """Where the language switch returns to: this page for GET, else what the view set in g.lang_next."""
    if request.method in ("GET", "HEAD"):
        qs = request.query_string.decode("latin-1")
        return quote(request.path) + ("?" + qs if qs else "")
    return safe_next(g.get("lang_next"))


def switch_lang_url(code: str, next_url: str | None = None) -> str:
    """Link that switches the interface to `code` and comes back to this page (or `next_url`)."""
    return url_for("i18n.set_language", code=code, next=safe_next(next_url or _current_location()))


@bp.get("/lang/<code>")
def set_language(code: str) -> Response:
    """Remember the chosen language in the `lang` cookie and go back to a local page only."""
    locale = normalize_locale(code)
    if locale is None:
        abort(404)
    response = redirect(safe_next(request.args.get("next")), code=303)
    secure = request.is_secure or bool(current_app.config.get("SESSION_COOKIE_SECURE"))
    for name, max_age in ((LANG_COOKIE, LANG_COOKIE_MAX_AGE), (LANG_SESSION_COOKIE, None)):
        response.set_cookie(
            name, locale, max_age=max_age, path="/", secure=secure, httponly=True, samesite="Lax"
        )
    response.headers["Cache-Control"] = "no-store"
    return response


def compile_translations(root: str | os.PathLike[str] = TRANSLATIONS_DIR) -> list[Path]:
    """Compile each `<root>/<locale>/LC_MESSAGES/*.po` whose .mo is missing or older; return those."""
    compiled: list[Path] = []
    for po_path in sorted(Path(root).glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        try:
            if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
                continue
            locale = po_path.parent.parent.name
            with po_path.open("rb") as po_file:
                catalog = read_po(po_file, locale=locale)
            # write next to the target and rename: concurrent workers never see a partial file
            fd, tmp_name = tempfile.mkstemp(prefix=".", suffix=".mo.tmp", dir=po_path.parent)
            try:
                with os.fdopen(fd, "wb") as mo_file:
                    write_mo(mo_file, catalog)
                os.chmod(tmp_name, 0o644)
                os.replace(tmp_name, mo_path)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
        except OSError as exc:  # read-only deployment: the .mo must then be built beforehand
            log.warning("cannot compile %s: %s", po_path, exc)
            continue
        compiled.append(mo_path)
    return compiled


def _template_context() -> dict[str, Any]:
    code = get_locale_code()
    return {"locale": code, "html_lang": HTML_LANG[code], "switch_lang_url": switch_lang_url}


def init_i18n(app: Flask, default_locale: str = "zh") -> Babel:
    """Set up flask-babel (zh/en), the `/lang/<code>` switch and the template context."""
    default = normalize_locale(default_locale)
    if default is None:
        raise ValueError(f"unsupported default locale {default_locale!r}; use one of {SUPPORTED_LOCALES}")
    compile_translations(TRANSLATIONS_DIR)
    app.config["IDP_DEFAULT_LOCALE"] = default
    app.config["BABEL_DEFAULT_LOCALE"] = default
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(TRANSLATIONS_DIR))
    babel = Babel(app, default_locale=default, locale_selector=select_locale)
    app.register_blueprint(bp)
    app.context_processor(_template_context)
    return babel
