"""How people ask for a saying: five prompt types, each with many phrasings, and the personas.

Many phrasings per type keep the fine-tuned model from learning one fixed prompt. Everything but the
word-seeded phrasings is written without lexicon words, so a prompt's type can be read back from it.
"""

from folksy.corpus.lexicon import LEXICON

INPUT_TYPES = ("word_seeded", "category_seeded", "persona_seeded", "template_seeded", "open_ended")

# {plural}: "mules" / "hay"; {a}: "a mule" / "hay"; {the}: "the mule" / "the hay" (see noun_forms).
WORD_PHRASINGS = (
    "Tell me something about {plural}.",
    "Give me a saying about {a}.",
    "What do folks say about {plural}?",
    "Got any wisdom about {plural}?",
    "Say something folksy about {the}.",
    "I need a proverb about {plural}.",
    "What's an old saying about {plural}?",
    "Make up a saying with {a} in it.",
    "Tell me a proverb that mentions {a}.",
    "Give me some folk wisdom on {plural}.",
    "Write a folksy saying about {plural}.",
    "What would an old-timer say about {plural}?",
)


def noun_forms(word: str) -> dict[str, str]:
    """The {plural}, {a} and {the} forms of a lexicon word that WORD_PHRASINGS take."""
    entry = LEXICON[word]
    return {"plural": entry["plural"], "a": f"{entry['article']} {word}".strip(), "the": f"the {word}"}


CATEGORY_NAMES = {
    "farm_animals": "farm animals",
    "wild_critters": "wild critters",
    "farm": "farm life",
    "kitchen": "the kitchen",
    "food": "home cooking",
    "weather": "the weather",
    "tools": "tools",
    "household": "house and home",
    "clothing": "clothes",
    "town": "small-town life",
    "garden": "the garden",
    "outdoors": "the great outdoors",
}

# Looser words a person might use for a category; only consulted when no lexicon word is named.
CATEGORY_KEYWORDS = {
    "farm_animals": ("livestock", "barnyard", "farm animal"),
    "wild_critters": ("wildlife", "critters", "wild animals", "bugs", "birds"),
    "farm": ("farming", "the farm", "farmer"),
    "kitchen": ("kitchen", "cookware"),
    "food": ("food", "cooking", "eating", "supper", "breakfast"),
    "weather": ("weather", "the sky", "storms"),
    "tools": ("tool", "workshop"),
    "household": ("housekeeping", "household", "around the house"),
    "clothing": ("clothing", "what folks wear", "fashion"),
    "town": ("town", "main street"),
    "garden": ("garden", "gardening", "vegetables", "flowers"),
    "outdoors": ("outdoors", "nature", "the woods", "wilderness"),
}

CATEGORY_PHRASINGS = (
    "Tell me a saying about {category}.",
    "Give me some wisdom about {category}.",
    "What's an old saying about {category}?",
    "Got a proverb about {category}?",
    "Share something folksy about {category}.",
    "I'd like a country saying about {category}.",
    "What do old-timers say about {category}?",
    "Make up a proverb about {category}.",
    "Say something wise about {category}.",
    "Give me a bit of folk wisdom on {category}.",
    "Tell me what folks back home say about {category}.",
    "Write me a folksy saying about {category}.",
)

# persona -> the categories that persona talks about, so a persona prompt gets a fitting saying.
PERSONAS = {
    "a grumpy farmer": ("farm", "farm_animals", "weather", "tools"),
    "a riverboat gambler": ("outdoors", "town", "food", "clothing"),
    "a grandmother": ("kitchen", "food", "household", "clothing", "garden"),
    "an old sheriff": ("town", "farm_animals", "tools", "outdoors"),
    "a country preacher": ("town", "weather", "household", "garden"),
    "a cattle rancher": ("farm_animals", "farm", "weather", "outdoors", "clothing"),
    "a blacksmith": ("tools", "farm", "farm_animals"),
    "a general store clerk": ("town", "food", "clothing", "tools", "household"),
    "a retired schoolteacher": ("town", "household", "garden", "wild_critters"),
    "a moonshiner": ("outdoors", "food", "wild_critters", "kitchen"),
    "a bass fisherman": ("outdoors", "wild_critters", "weather"),
    "a long-haul trucker": ("town", "weather", "food"),
    "a small-town barber": ("town", "clothing", "household"),
    "a beekeeper": ("garden", "farm_animals", "wild_critters", "food"),
    "a cowboy": ("farm_animals", "outdoors", "clothing", "weather"),
    "a diner waitress": ("food", "kitchen", "town"),
    "a dairy farmer": ("farm_animals", "farm", "food", "weather"),
    "a backwoods trapper": ("wild_critters", "outdoors", "weather", "tools"),
    "a church-supper cook": ("kitchen", "food", "town"),
    "a county fair judge": ("food", "garden", "farm_animals", "town"),
    "a tired mother of six": ("household", "kitchen", "clothing", "food"),
    "a front-porch whittler": ("tools", "household", "outdoors", "wild_critters"),
    "a seamstress": ("clothing", "household", "town"),
    "a master gardener": ("garden", "weather", "wild_critters"),
    "a traveling salesman": ("town", "clothing", "household", "tools"),
}

PERSONA_PHRASINGS = (
    "You're {persona}. Tell me a saying.",
    "Speak like {persona} and give me a proverb.",
    "What would {persona} say?",
    "Pretend you're {persona}. Share some wisdom.",
    "Give me a saying {persona} might use.",
    "In the voice of {persona}, tell me something wise.",
    "Talk to me like {persona} would.",
    "I'd like a proverb from {persona}.",
    "Be {persona} for a minute and give me some advice.",
    "How would {persona} put it?",
    "Channel {persona} and hand me a bit of folk wisdom.",
    "Imagine you're {persona}. What's your favorite saying?",
)

# {description} is engine.FAMILY_DESCRIPTIONS[family], e.g. "getting ready for something you can't stop".
TEMPLATE_PHRASINGS = (
    "Give me a saying about {description}.",
    "Tell me a proverb about {description}.",
    "What's an old saying about {description}?",
    "I need some folk wisdom about {description}.",
    "Got a saying about {description}?",
    "Share a proverb on {description}.",
    "Make up a folksy saying about {description}.",
    "What would an old-timer say about {description}?",
    "Say something wise about {description}.",
    "Give me a country saying about {description}.",
    "Teach me a proverb about {description}.",
    "Write a folksy proverb about {description}.",
)

OPEN_PHRASINGS = (
    "Tell me a proverb.",
    "Give me some folk wisdom.",
    "Say something folksy.",
    "What's a good old saying?",
    "Share a bit of country wisdom.",
    "Got any sayings for me?",
    "Tell me something wise.",
    "I could use some homespun advice.",
    "Give me a proverb, any proverb.",
    "Lay some old-timey wisdom on me.",
    "Make up a folksy saying.",
    "What would your grandpa say?",
)
