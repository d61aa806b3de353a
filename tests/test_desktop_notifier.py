"""Desktop notifications through a real D-Bus session bus started for the test, with a small
org.freedesktop.Notifications service registered on it in this process: the call arrives with the
spec's signature, and a click (ActionInvoked "default") opens the video. Without a service: False."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from PySide6.QtDBus import QDBusConnection, QDBusMessage, QDBusVirtualObject

from stepvideo_desktop.notifier import INTERFACE, PATH, SERVICE, DesktopNotifier

pytestmark = pytest.mark.skipif(shutil.which("dbus-daemon") is None or shutil.which("gdbus") is None,
                                reason="dbus-daemon or gdbus missing (apt-get install dbus libglib2.0-bin)")

NOTIFY_XML = f"""<node><interface name="{INTERFACE}">
 <method name="Notify">
  <arg name="app_name" type="s" direction="in"/><arg name="replaces_id" type="u" direction="in"/>
  <arg name="app_icon" type="s" direction="in"/><arg name="summary" type="s" direction="in"/>
  <arg name="body" type="s" direction="in"/><arg name="actions" type="as" direction="in"/>
  <arg name="hints" type="a{{sv}}" direction="in"/><arg name="expire_timeout" type="i" direction="in"/>
  <arg name="id" type="u" direction="out"/>
 </method>
 <signal name="ActionInvoked"><arg name="id" type="u"/><arg name="action_key" type="s"/></signal>
 <signal name="NotificationClosed"><arg name="id" type="u"/><arg name="reason" type="u"/></signal>
</interface></node>"""


class FakeNotifications(QDBusVirtualObject):
    """What GNOME Shell or Plasma offer, reduced to recording the calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, list]] = []

    def introspect(self, path: str) -> str:
        return ""

    def handleMessage(self, message: QDBusMessage, connection: QDBusConnection) -> bool:
        if message.member() == "Introspect":
            connection.send(message.createReply(NOTIFY_XML))
        elif message.member() == "Notify":
            self.calls.append((message.signature(), message.arguments()))
            connection.send(message.createReply(41 + len(self.calls)))
        else:
            return False
        return True


@pytest.fixture
def session_bus(monkeypatch):
    daemon = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        address = daemon.stdout.readline().strip()
        assert address.startswith("unix:"), address
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", address)  # for gdbus
        yield address
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def _connect(address: str, name: str) -> QDBusConnection:
    bus = QDBusConnection.connectToBus(address, name)
    assert bus.isConnected()
    return bus


def test_a_notification_is_sent_and_a_click_opens_the_video(qapp, qtbot, session_bus, tmp_path):
    server = _connect(session_bus, "fake-notifications")
    fake = FakeNotifications()
    assert server.registerVirtualObject(PATH, fake) and server.registerService(SERVICE)
    opened: list[str] = []
    notifier = DesktopNotifier(bus=_connect(session_bus, "app"), opener=opened.append)
    assert notifier.available()

    video = tmp_path / "a fox's walk.mp4"
    with qtbot.waitSignal(notifier.sent, timeout=15000) as sent:
        assert notifier.notify("Video ready", "a fox walks through snow", video)
    [(signature, args)] = fake.calls
    assert signature == "susssasa{sv}i"  # exactly the spec's types (a uint32 id, an int32 timeout)
    assert args[0] == "StepVideo Desktop" and args[3] == "Video ready" and args[4] == "a fox walks through snow"
    assert args[5] == ["default", "Open"] and args[7] == -1
    notification_id = sent.args[0]
    assert notification_id == 42

    other = QDBusMessage.createSignal(PATH, INTERFACE, "ActionInvoked")
    other.setArguments([notification_id + 100, "default"])  # someone else's notification: not ours
    click = QDBusMessage.createSignal(PATH, INTERFACE, "ActionInvoked")
    click.setArguments([notification_id, "default"])
    with qtbot.waitSignal(notifier.activated, timeout=10000):
        assert server.send(other) and server.send(click)
    assert opened == [str(video)]


def test_without_a_notification_service_the_caller_falls_back(qapp, session_bus):
    notifier = DesktopNotifier(bus=_connect(session_bus, "app-alone"))
    assert not notifier.available() and notifier.notify("Video ready", "x") is False
    assert not DesktopNotifier(bus=QDBusConnection.connectToBus("unix:path=/nonexistent", "nobus")).available()
    assert os.environ["DBUS_SESSION_BUS_ADDRESS"] == session_bus
