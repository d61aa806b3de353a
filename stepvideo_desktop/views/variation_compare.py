"""Variations side by side: one player per video of a group, with its seed, and one Play/Pause and
Restart for all of them (so the same moment of each variation is on screen together)."""

from __future__ import annotations

import math

from PySide6.QtWidgets import QDialog, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from stepvideo_desktop.views.gallery_model import GalleryItem
from stepvideo_desktop.views.player import PlayerView
from stepvideo_desktop.views.widgets import GRID, push_button


def grid_columns(count: int) -> int:
    """2 videos side by side, 4 as 2×2, 6 as 3×2, … (never more than 4 across)."""
    return min(4, max(1, math.ceil(math.sqrt(count))))


class VariationCompareDialog(QDialog):
    def __init__(self, items: list[GalleryItem], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        prompt = items[0].prompt if items else ""
        self.setWindowTitle(f"Compare {len(items)} variations — {prompt[:60]}")
        self.setAccessibleName("Compare variations")
        col = QVBoxLayout(self)
        col.setContentsMargins(2 * GRID, 2 * GRID, 2 * GRID, 2 * GRID)
        col.setSpacing(2 * GRID)
        bar = QHBoxLayout()
        self.play_all = push_button("Play all", "play", primary=True)
        self.restart_all = push_button("Restart all", "retry")
        self.play_all.clicked.connect(self._toggle_all)
        self.restart_all.clicked.connect(lambda: [p.seek(0) for p in self.players])
        bar.addWidget(QLabel(prompt))
        bar.addStretch(1)
        bar.addWidget(self.restart_all)
        bar.addWidget(self.play_all)
        col.addLayout(bar)
        grid = QGridLayout()
        grid.setSpacing(2 * GRID)
        self.players: list[PlayerView] = []
        self.labels: list[QLabel] = []
        columns = grid_columns(len(items))
        for i, item in enumerate(items):
            cell = QVBoxLayout()
            label = QLabel(f"seed {item.request.get('seed', '?')} · {item.path.name}")
            label.setAccessibleName(f"Variation {i + 1}")
            player = PlayerView()
            player.load(str(item.path), poster=item.thumbnail)
            cell.addWidget(label)
            cell.addWidget(player, 1)
            grid.addLayout(cell, i // columns, i % columns)
            self.players.append(player)
            self.labels.append(label)
        col.addLayout(grid, 1)
        self.resize(min(1600, 420 * columns), min(1000, 360 * math.ceil(len(items) / columns) + 80))
        self._playing = False

    def _toggle_all(self) -> None:
        self._playing = not self._playing
        for player in self.players:
            if player.player is None:
                continue
            player.player.play() if self._playing else player.player.pause()
            if self._playing:
                player._stack.setCurrentWidget(player.video)  # off the poster, as the player's own Play does
        self.play_all.setText("Pause all" if self._playing else "Play all")

    def done(self, result: int) -> None:  # closing stops every player (and frees its decoder)
        for player in self.players:
            player.shutdown()
        super().done(result)
