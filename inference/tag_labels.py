"""The curated label sets of the zero-shot tagger (`inference.tagging`): styles, genres and moods, each with its
Russian name and the English phrases CLIP reads; and how the gallery CSV's style/genre strings map onto them.

A label's prompts are every template of its kind filled with every one of its phrases ("a baroque painting",
"a painting in the Baroque style", ...): averaging several prompts per label is the usual CLIP zero-shot recipe
and is steadier than any single wording. The keys are stable English identifiers: clients, the stored tags and
`eval_retrieval` all use them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = ("style", "genre", "mood")


@dataclass(frozen=True)
class Label:
    kind: str
    name: str
    """Stable English key."""
    ru: str
    phrases: tuple[str, ...]
    """How the label is said inside a template; the first is also its English display name."""

    def prompts(self) -> list[str]:
        return [template.format(phrase) for template in TEMPLATES[self.kind] for phrase in self.phrases]


TEMPLATES: dict[str, tuple[str, ...]] = {
    "style": (
        "a {} painting",
        "a painting in the style of {}",
        "an artwork of {}",
        "a famous {} artwork",
    ),
    "genre": (
        "a painting of {}",
        "an artwork showing {}",
        "a famous painting, {}",
    ),
    "mood": (
        "a {} painting",
        "a painting with a {} mood",
        "an artwork that feels {}",
    ),
}


def _labels(kind: str, rows: list[tuple[str, str, tuple[str, ...]]]) -> tuple[Label, ...]:
    return tuple(Label(kind, name, ru, phrases) for name, ru, phrases in rows)


STYLES = _labels(
    "style",
    [
        ("renaissance", "ренессанс", ("Renaissance", "Italian Renaissance")),
        ("mannerism", "маньеризм", ("Mannerist", "Mannerism")),
        ("baroque", "барокко", ("Baroque", "Dutch Golden Age")),
        ("rococo", "рококо", ("Rococo",)),
        ("neoclassicism", "неоклассицизм", ("Neoclassical", "Neoclassicism")),
        ("romanticism", "романтизм", ("Romantic", "Romanticism")),
        ("academic_art", "академизм", ("academic", "Academic art", "salon")),
        ("realism", "реализм", ("realist", "Realism")),
        ("impressionism", "импрессионизм", ("Impressionist", "Impressionism")),
        ("post_impressionism", "постимпрессионизм", ("Post-Impressionist", "Post-Impressionism")),
        ("pointillism", "пуантилизм", ("pointillist", "Pointillism, painted in small dots")),
        ("symbolism", "символизм", ("Symbolist", "Symbolism")),
        ("art_nouveau", "модерн", ("Art Nouveau", "Jugendstil")),
        ("fauvism", "фовизм", ("Fauvist", "Fauvism, with wild bright colours")),
        ("expressionism", "экспрессионизм", ("Expressionist", "Expressionism")),
        ("cubism", "кубизм", ("Cubist", "Cubism")),
        ("surrealism", "сюрреализм", ("Surrealist", "Surrealism")),
        ("abstract", "абстракционизм", ("abstract", "abstract art")),
        ("minimalism", "минимализм", ("minimalist", "Minimalism")),
        ("pop_art", "поп-арт", ("Pop Art",)),
        ("naive_art", "наивное искусство", ("naive art", "naive, childlike")),
        ("ukiyo_e", "укиё-э", ("ukiyo-e", "Japanese woodblock print")),
        ("gothic", "готика", ("Gothic", "medieval")),
    ],
)

GENRES = _labels(
    "genre",
    [
        ("portrait", "портрет", ("a portrait", "a portrait of a person")),
        ("landscape", "пейзаж", ("a landscape", "fields, trees and hills")),
        ("seascape", "марина", ("a seascape", "the sea and ships")),
        ("cityscape", "городской пейзаж", ("a cityscape", "streets and buildings of a city")),
        ("still_life", "натюрморт", ("a still life", "fruit, flowers and objects on a table")),
        ("flower_painting", "цветы", ("flowers", "a bouquet of flowers")),
        ("religious", "религиозная живопись", ("a religious scene", "saints, Christ and the Madonna")),
        ("mythological", "мифологическая живопись", ("a mythological scene", "gods and heroes of myth")),
        ("history_painting", "историческая живопись", ("a historical event", "a history painting")),
        ("battle", "батальная живопись", ("a battle", "soldiers fighting a battle")),
        ("genre_painting", "бытовой жанр", ("a scene of everyday life", "ordinary people at work and at home")),
        ("interior", "интерьер", ("an interior", "the inside of a room")),
        ("nude", "ню", ("a nude", "a nude figure")),
        ("animal", "анималистика", ("animals", "a horse, a dog or other animals")),
        ("abstract", "абстрактная композиция", ("an abstract composition", "shapes and colours")),
    ],
)

MOODS = _labels(
    "mood",
    [
        ("calm", "спокойное", ("calm", "peaceful")),
        ("joyful", "радостное", ("joyful", "happy")),
        ("melancholic", "меланхоличное", ("melancholic", "sad")),
        ("dramatic", "драматичное", ("dramatic",)),
        ("mysterious", "таинственное", ("mysterious",)),
        ("romantic", "романтичное", ("romantic", "tender, loving")),
        ("tense", "напряжённое", ("tense", "anxious")),
        ("solemn", "торжественное", ("solemn", "majestic")),
        ("dreamy", "мечтательное", ("dreamy", "dreamlike")),
        ("gloomy", "мрачное", ("gloomy", "dark and sombre")),
        ("playful", "игривое", ("playful", "light-hearted")),
        ("nostalgic", "ностальгическое", ("nostalgic",)),
    ],
)

LABELS: tuple[Label, ...] = (*STYLES, *GENRES, *MOODS)
BY_KEY = {(label.kind, label.name): label for label in LABELS}

_CSV_ALIASES: dict[str, dict[str, str]] = {
    "style": {
        "high renaissance": "renaissance",
        "early renaissance": "renaissance",
        "northern renaissance": "renaissance",
        "mannerism late renaissance": "mannerism",
        "dutch golden age": "baroque",
        "neoclassical": "neoclassicism",
        "classicism": "neoclassicism",
        "academicism": "academic_art",
        "academic": "academic_art",
        "international gothic": "gothic",
        "cubist": "cubism",
        "analytical cubism": "cubism",
        "synthetic cubism": "cubism",
        "abstract expressionism": "abstract",
        "abstract art": "abstract",
        "color field painting": "abstract",
        "lyrical abstraction": "abstract",
        "action painting": "abstract",
        "modern": "art_nouveau",
        "art nouveau modern": "art_nouveau",
        "naive art primitivism": "naive_art",
        "primitivism": "naive_art",
        "neo impressionism": "pointillism",
        "ukiyo e": "ukiyo_e",
        "ukiyo e print": "ukiyo_e",
    },
    "genre": {
        "portraiture": "portrait",
        "self portrait": "portrait",
        "marina": "seascape",
        "marine": "seascape",
        "religious painting": "religious",
        "mythological painting": "mythological",
        "history": "history_painting",
        "historical": "history_painting",
        "battle painting": "battle",
        "genre": "genre_painting",
        "nude painting nu": "nude",
        "nude painting": "nude",
        "animal painting": "animal",
        "flower": "flower_painting",
        "flowers": "flower_painting",
        "city": "cityscape",
        "landscape painting": "landscape",
    },
}


def _plain(value: str) -> str:
    return re.sub(r"[\s_\-()]+", " ", value.lower()).strip()


def labels_for_csv(kind: str, value: str) -> list[str]:
    """Every label key a CSV cell names, in its order: "Baroque|Dutch Golden Age" -> ["baroque"]; WikiArt
    names ("Northern_Renaissance") and loose spellings are mapped through a small alias table; parts with no
    label ("Biedermeier", "painting") are dropped."""
    keys: list[str] = []
    names = {_plain(label.name): label.name for label in LABELS if label.kind == kind}
    names.update({_plain(phrase): label.name for label in LABELS if label.kind == kind for phrase in label.phrases})
    aliases = _CSV_ALIASES.get(kind, {})
    for part in re.split(r"[|;,/]", value):
        plain = _plain(part)
        key = aliases.get(plain) or names.get(plain) or names.get(plain.removeprefix("a ").removeprefix("an "))
        if key is not None and key not in keys:
            keys.append(key)
    return keys


def label_for_csv(kind: str, value: str) -> str | None:
    """The first label key a CSV cell names (see `labels_for_csv`), or None."""
    keys = labels_for_csv(kind, value)
    return keys[0] if keys else None
