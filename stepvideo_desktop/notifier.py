"""Desktop notifications over D-Bus (org.freedesktop.Notifications), so a finished video is announced on
GNOME too, where a tray icon alone shows nothing; clicking the notification opens the video.

Listening uses QtDBus: the ActionInvoked and NotificationClosed signals arrive as QDBusMessages (any
argument signature), and whether a notification service exists is asked of the bus itself. Sending
cannot: Notify's signature is (susssasa{sv}i), and PySide6 has no way to put a uint32 into a
QDBusMessage (a Python int goes out as int32, which GNOME Shell and Plasma reject). So the call goes
through `gdbus call`, which reads the method's signature by introspection and types the arguments;
it runs as a QProcess, never blocking the window. Without a session bus, a notification service or
gdbus, `available()` is False and the caller uses the tray message instead.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QUrl, Signal, Slot
from PySide6.QtDBus import QDBusConnection, QDBusMessage
from PySide6.QtGui import QDesktopServices

log = logging.getLogger(__name__)

SERVICE = "org.freedesktop.Notifications"
PATH = "/org/freedesktop/Notifications"
INTERFACE = "org.freedesktop.Notifications"
APP_NAME = "StepVideo Desktop"
DESKTOP_ENTRY = "stepvideo-desktop"  # lets the shell show our icon and name
_ID_RE = re.compile(r"\((?:uint32 )?(\d+),\)")  # gdbus prints "(uint32 7,)"


def gvariant_string(text: str) -> str:
    """A Python string as GVariant text (gdbus parses its arguments as GVariant)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def open_file(path: str) -> None:
    QDesktopServices.openUrl(QUrl.fromLocalFile(path))


class DesktopNotifier(QObject):
    sent = Signal(int)  # the notification id the service gave (tests wait on it)
    activated = Signal(str)  # a notification was clicked: the file it opened

    def __init__(self, parent: QObject | None = None, *, bus: QDBusConnection | None = None,
                 opener: Callable[[str], None] = open_file, gdbus: str | None = None) -> None:
        super().__init__(parent)
        self._bus = bus if bus is not None else QDBusConnection.sessionBus()
        self._gdbus = gdbus or shutil.which("gdbus")
        self._opener = opener
        self._targets: dict[int, str] = {}  # notification id → file opened on click
        self._listening = False
        self._pending: list[QProcess] = []

    def available(self) -> bool:
        if not self._gdbus or not self._bus.isConnected():
            return False
        reply = self._bus.interface().isServiceRegistered(SERVICE)
        return bool(reply.value()) if reply.isValid() else False

    def notify(self, title: str, body: str, open_path: str | Path | None = None) -> bool:
        """Send one notification; False when it could not be sent (the caller falls back)."""
        if not self.available():
            return False
        self._listen()
        actions = "['default', 'Open']" if open_path else "@as []"
        hints = f"{{'desktop-entry': <{gvariant_string(DESKTOP_ENTRY)}>}}"
        args = ["call", "--session", "--dest", SERVICE, "--object-path", PATH, "--method", f"{INTERFACE}.Notify",
                "--", gvariant_string(APP_NAME), "0", gvariant_string(DESKTOP_ENTRY), gvariant_string(title),
                gvariant_string(body), actions, hints, "-1"]
        process = QProcess(self)
        self._pending.append(process)
        target = str(open_path) if open_path else None
        process.finished.connect(lambda code, _status, p=process: self._sent(p, code, target))
        process.start(self._gdbus, args)
        return True

    def _sent(self, process: QProcess, code: int, target: str | None) -> None:
        self._pending.remove(process)
        out = bytes(process.readAllStandardOutput()).decode(errors="replace")
        match = _ID_RE.search(out)
        if code != 0 or not match:
            log.warning("the notification was not shown: %s", bytes(process.readAllStandardError()).decode(
                errors="replace").strip() or out.strip() or f"gdbus exit code {code}")
            return
        notification_id = int(match.group(1))
        if target:
            self._targets[notification_id] = target
        self.sent.emit(notification_id)

    def _listen(self) -> None:
        if self._listening:
            return
        self._listening = True
        for name, slot in (("ActionInvoked", "_on_action"), ("NotificationClosed", "_on_closed")):
            if not self._bus.connect(SERVICE, PATH, INTERFACE, name, self, f"1{slot}(QDBusMessage)"):
                log.warning("cannot listen to %s.%s: clicks on notifications open nothing", INTERFACE, name)

    @Slot(QDBusMessage)
    def _on_action(self, message: QDBusMessage) -> None:
        args = message.arguments()
        if len(args) != 2 or args[1] != "default":
            return
        target = self._targets.pop(int(args[0]), None)
        if target is not None:
            self._opener(target)
            self.activated.emit(target)

    @Slot(QDBusMessage)
    def _on_closed(self, message: QDBusMessage) -> None:
        args = message.arguments()
        if args:
            self._targets.pop(int(args[0]), None)
