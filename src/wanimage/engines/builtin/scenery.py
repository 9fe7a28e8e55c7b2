"""Scene words -> the built-in model's background: a sky gradient for the time of day and the
weather, a ground band for where the picture is set ("a grizzly in the woods at dusk": an orange
to violet sky over dark green). The model paints flat colours only; these are its scenery."""

from __future__ import annotations

from wanimage.prompts import Scene

RGB = tuple[int, int, int]

# (top, bottom) of the sky
SKY: dict[str, tuple[RGB, RGB]] = {
    "dawn": ((250, 190, 160), (255, 230, 180)),
    "morning": ((150, 200, 245), (225, 240, 250)),
    "day": ((90, 160, 235), (190, 225, 250)),
    "dusk": ((90, 60, 140), (245, 150, 80)),
    "night": ((15, 20, 50), (45, 55, 100)),
    "rain": ((110, 120, 135), (165, 175, 185)),
    "storm": ((55, 60, 75), (110, 115, 130)),
    "snow": ((200, 210, 225), (240, 245, 250)),
    "fog": ((200, 200, 205), (230, 230, 232)),
    "cloud": ((160, 170, 185), (215, 220, 228)),
    "sun": ((70, 150, 240), (170, 215, 250)),
}
GROUND: dict[str, RGB] = {
    "forest": (40, 95, 50), "grass": (95, 165, 70), "sand": (230, 205, 150), "snow": (245, 248, 252),
    "water": (50, 120, 190), "street": (110, 110, 118),
}


def scenery(scene: Scene) -> tuple[list[RGB], RGB | None]:
    """-> (sky colours, top then bottom; [] when no scene word), ground colour or None. The time of
    day decides the sky, the weather darkens or greys it; at night the ground darkens too."""
    sky = SKY.get(scene.time or "") or SKY.get(scene.weather or "")
    if sky and scene.time and scene.weather in ("rain", "storm", "fog", "cloud", "snow"):
        sky = tuple(_mix(a, b, 0.5) for a, b in zip(sky, SKY[scene.weather], strict=True))  # type: ignore[assignment]
    ground = GROUND.get(scene.ground or "")
    if ground is None and scene.weather == "snow":
        ground = GROUND["snow"]
    if ground is not None and scene.time in ("night", "dusk"):
        ground = _mix(ground, (10, 10, 30), 0.55 if scene.time == "night" else 0.3)
    if ground is not None and sky is None:
        sky = SKY["day"]
    return (list(sky) if sky else []), ground


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(round((1 - t) * x + t * y) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]
