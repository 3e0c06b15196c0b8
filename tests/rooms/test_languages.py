import gettext
import re
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


def test_the_lobby_speaks_simplified_chinese_to_a_chinese_browser(client_for, alice, room):
    content = client_for(alice).get("/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    assert '<html lang="zh-hans">' in content
    assert "创建房间" in content
    assert "房间" in content


def test_the_language_switcher_remembers_the_choice(client_for, alice):
    client = client_for(alice)
    response = client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert response.status_code == 302
    assert "退出登录" in client.get("/").content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert "Sign out" in client.get("/").content.decode()


# Every string the page and the templates put before people, and the compiled catalogs they
# are read from: a string added without its translation shows English to a Chinese page.
JS_STRING = re.compile(
    r"""\b(?:gettext|ngettext)\(\s*(["'])((?:\\.|(?!\1).)*)\1(?:\s*,\s*(["'])((?:\\.|(?!\3).)*)\3)?"""
)
TEMPLATE_STRING = re.compile(r"""{%\s*translate\s+(["'])((?:(?!\1).)*)\1""")
LOCALE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"


def catalog(domain: str) -> dict[str, str]:
    with (LOCALE / f"{domain}.mo").open("rb") as compiled:
        messages = gettext.GNUTranslations(compiled)._catalog  # type: ignore[attr-defined]
    # Plural entries are keyed (msgid, n); the singular msgid is what the code names, and
    # Chinese has one form (n = 0).
    return {
        key[0] if isinstance(key, tuple) else key: value
        for key, value in messages.items()
        if not isinstance(key, tuple) or key[1] == 0
    }


def unescape(literal: str) -> str:
    return literal.encode().decode("unicode_escape").encode("latin-1").decode()


def test_every_string_of_the_call_page_scripts_is_in_the_chinese_catalog() -> None:
    translated = catalog("djangojs")
    found = {
        unescape(m.group(2))
        for script in (Path(settings.BASE_DIR) / "static" / "js").rglob("*.js")
        for m in JS_STRING.finditer(script.read_text())
    }
    assert len(found) > 200  # the pattern reads the scripts (a broken one finds nothing)
    missing = sorted(text for text in found if not translated.get(text))
    assert not missing, missing


def test_every_string_of_the_templates_is_in_the_chinese_catalog() -> None:
    translated = catalog("django")
    found = {
        m.group(2)
        for template in (Path(settings.BASE_DIR) / "templates").rglob("*.html")
        for m in TEMPLATE_STRING.finditer(template.read_text())
    }
    assert len(found) > 50
    missing = sorted(text for text in found if not translated.get(text))
    assert not missing, missing
