"""What SynthClips can show: shapes, colours, sizes and actions, and how actions pair up in time.

Every action has a *counterpart*: the action whose frames are this action's frames played
backwards. Four pairs are distinct actions (the "time-reversed pairs" an order-blind model
cannot tell apart); spin, bounce and change_colour are their own counterparts (a spin reversed is
a spin the other way, a bounce reversed is a bounce, red->blue reversed is blue->red).
"""

from __future__ import annotations

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "white", "orange")
SIZES: tuple[str, ...] = ("small", "large")

COLOUR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (225, 45, 40),
    "green": (40, 195, 70),
    "blue": (45, 95, 235),
    "yellow": (240, 220, 45),
    "purple": (165, 65, 210),
    "white": (245, 245, 245),
    "orange": (250, 145, 25),
}

# Object radius as a fraction of the frame side; each shape scales it to look equally big.
SIZE_RADIUS: dict[str, float] = {"small": 0.10, "large": 0.17}
SHAPE_EXTENT = 1.25  # no shape reaches further than SHAPE_EXTENT * radius from its centre

ACTIONS: tuple[str, ...] = (
    "move_left",
    "move_right",
    "move_up",
    "move_down",
    "grow",
    "shrink",
    "appear",
    "disappear",
    "spin",
    "bounce",
    "change_colour",
)

REVERSED_PAIRS: tuple[tuple[str, str], ...] = (
    ("move_left", "move_right"),
    ("move_up", "move_down"),
    ("grow", "shrink"),
    ("appear", "disappear"),
)

COUNTERPART: dict[str, str] = {action: action for action in ACTIONS}
for _first, _second in REVERSED_PAIRS:
    COUNTERPART[_first], COUNTERPART[_second] = _second, _first

REVERSIBLE_ACTIONS: frozenset[str] = frozenset(a for a in ACTIONS if COUNTERPART[a] != a)

# An action and its counterpart share a family: a model that gets the family right but not the
# member has seen what happened, but not in which order.
ACTION_FAMILY: dict[str, str] = {
    "move_left": "move_horizontal",
    "move_right": "move_horizontal",
    "move_up": "move_vertical",
    "move_down": "move_vertical",
    "grow": "resize",
    "shrink": "resize",
    "appear": "visibility",
    "disappear": "visibility",
    "spin": "spin",
    "bounce": "bounce",
    "change_colour": "change_colour",
}
ACTION_FAMILIES: tuple[str, ...] = tuple(dict.fromkeys(ACTION_FAMILY[a] for a in ACTIONS))

# Actions that show nothing on some shapes (a spinning circle looks still).
INVISIBLE_ACTIONS: frozenset[tuple[str, str]] = frozenset({("circle", "spin")})
