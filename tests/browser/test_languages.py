"""The call page in Simplified Chinese: templates and every string the scripts write."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


def test_the_call_page_speaks_simplified_chinese_when_chosen(person):
    alice = person("Alice")
    room_url = alice.create_room("Team sync")
    lin = person("Lin")
    lin.page.goto(lin.url("/"))
    lin.page.select_option("#language-select", "zh-hans")  # the switcher submits itself
    expect(lin.page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(lin.page.get_by_role("heading", name="创建房间")).to_be_visible()

    lin.join(room_url)
    page = lin.page
    # From the template...
    expect(page.get_by_role("button", name="离开通话")).to_be_visible()
    expect(page.get_by_placeholder("输入消息…")).to_be_visible()
    # ...and from the scripts, through Django's JavaScript catalog.
    expect(page.locator("body")).to_contain_text("已连接")
    expect(page.locator("body")).to_contain_text("Lin（您）")  # noqa: RUF001
    lin.wait_for_media(1)
    page.locator("#chat-input").fill("你好")
    page.locator("#chat-input").press("Enter")
    expect(alice.page.locator("body")).to_contain_text("你好")
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=OUTPUT / "call-zh-hans.png")
