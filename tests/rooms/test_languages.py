import pytest

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
