"""The seven families' surface patterns.

A pattern is a sentence with slots for one main word `x` and, in most families, a second word `y`.
A slot is `{x}` (the bare word) or `{x.FORM}`; `{x.a:ADJ}` puts an adjective between article and noun;
`[this|that]` picks one of the alternatives. The forms, for x = "mule" / x = "hay":

    x.a       a mule / hay              x.the      the mule / the hay
    x.pl      mules / hay               x.a_prop   a stubborn mule / scratchy hay
    x.use     haul a load               x.uses     hauls a load          x.using   haulin' a load
    x.prop    stubborn                  x.most     most stubborn
    x.part    one part ("long ears")    x.part2, x.part3  two other parts, all different
    x.the_part  the long ears           x.bare_part  long ears ("a handle" -> "handle")
    x.parts   all three, "long ears, four hooves and a pack saddle"
    x.they    they / it                 x.are      are / is              x.theyre  they're / it's
    x.maker   raise / grow / cook / make / sell  (who produces it: "the folks who raise mules")

`x=` lists what the main word must be (see FEATURES); `y=` says how the second word relates to the
first ("same_prop": shares its property, "same_category", "related", "any") and `y_needs` what it must be.
"""

import re
from dataclasses import dataclass, field

# What a pattern can ask of a word:
# - count: takes a/an and a plural;
# - ownable: a thing a person can buy, keep or sell;
# - portable: ownable and small enough to carry, stack or hang (a horseshoe, not a barn);
# - handleable: portable, or a critter you could grab or let in the house;
# - critter: an animal, tame or wild;
# - superlative: its property reads well as "the most X" ("the lostest key" does not);
# - fault / virtue: its property is something to complain about / something it is good for being
#   (see lexicon.FAULTS and lexicon.VIRTUES).
FEATURES = ("count", "ownable", "portable", "handleable", "critter", "superlative", "fault", "virtue")
RELATIONS = ("same_prop", "same_category", "related", "any")
# Forms that say the word itself; the others ("{y.use}", "{x.prop}") only borrow from it.
NAMING_FORMS = (None, "a", "the", "pl", "a_prop")

# "related": the second word comes from a category a person would reach into against the first one's
# trouble (raincoats against rain, horseshoes against a mule), so the pair makes a little sense.
RELATED_CATEGORIES = {
    "farm_animals": ("farm", "food", "tools", "garden"),
    "wild_critters": ("farm", "household", "tools", "garden"),
    "farm": ("farm", "tools", "clothing"),
    "kitchen": ("kitchen", "food", "household"),
    "food": ("food", "kitchen"),
    "weather": ("clothing", "household", "farm", "tools"),
    "tools": ("tools", "household", "farm"),
    "household": ("household", "kitchen", "tools", "clothing"),
    "clothing": ("clothing", "household"),
    "town": ("town", "clothing", "household", "food"),
    "garden": ("garden", "tools", "farm"),
    "outdoors": ("outdoors", "tools", "clothing", "farm"),
}


@dataclass(frozen=True)
class Pattern:
    text: str
    x: frozenset = field(default_factory=frozenset)
    y: str | None = None
    y_needs: frozenset = field(default_factory=frozenset)

    @property
    def named_roles(self) -> frozenset:
        """The roles ("x", "y") whose word appears in the saying, not just its use or property."""
        slots = re.findall(r"\{([xy])(?:\.(\w+))?", self.text)
        return frozenset(role for role, form in slots if (form or None) in NAMING_FORMS)

    def __post_init__(self):
        uses_y = "{y" in self.text
        if uses_y != (self.y is not None):
            raise ValueError(f"pattern {self.text!r}: y= must be given exactly when the text has a {{y...}} slot")
        if self.y is not None and self.y not in RELATIONS:
            raise ValueError(f"pattern {self.text!r}: unknown relation {self.y!r}")
        unknown = (set(self.x) | set(self.y_needs)) - set(FEATURES)
        if unknown:
            raise ValueError(f"pattern {self.text!r}: unknown features {sorted(unknown)}")


def P(text: str, x: tuple = (), y: str | None = None, y_needs: tuple = ()) -> Pattern:
    return Pattern(text, frozenset(x), y, frozenset(y_needs))


PATTERNS: dict[str, tuple[Pattern, ...]] = {
    # Treating two things as the same because they share a part, a look or a quality.
    "false_equivalence": (
        P("{x.a} without {x.part}? That's just {y.a:fancy} thinkin' it's better than the rest.", y="same_category"),
        P("Puttin' {y.part} on {x.a} don't make it {y.a}.", y="same_category"),
        P("Don't go callin' {x.a} {y.a} just 'cause they're both {x.prop}.", y="same_prop"),
        P("{x.a} and {y.a} are both {x.prop}, but only a fool tries to {y.use} with {x.a}.", y="same_prop"),
        P("Just 'cause {x.a}'s {x.prop} don't make it {y.a}.", y="same_prop"),
        P("You can paint {x.a} to look like {y.a}, but it won't help you {y.use}.", x=("handleable",), y="same_category"),
        P("Dress {x.a} up like {y.a} and all you got is {x.a:confused}.", x=("handleable",), y="same_category"),
        P("Folks who can't tell {x.a} from {y.a} got no business {y.using}.", y="same_category"),
        P("Givin' {x.a} {y.part} don't make it {y.a}; it just makes it {x.a} with {y.part}.", y="same_category"),
        P("Never trust a man who says {x.a}'s as good as {y.a} for {y.using}.", y="same_category"),
        P("{x.a} with {y.part} is still {x.a}, and {y.a} without {y.part} ain't much of anything.", y="same_category"),
        P("Swappin' {y.a} for {x.a} 'cause they're both {x.prop} is how a man ends up tryin' to {y.use} with {x.a}.", y="same_prop"),
        P("Put {x.a} where {y.a} ought to be and folks'll notice by suppertime.", y="same_category"),
        P("Callin' {x.a} {y.a} don't change a thing but the conversation.", y="any"),
        P("{x.a} wearin' {y.a}'s Sunday clothes is still {x.a} come Monday.", x=("critter",), y="same_category", y_needs=("count",)),
        P("Bein' {x.prop} don't make {x.a} into {y.a}, no matter how hard it tries.", y="same_prop"),
    ),
    # Getting ready for something you can't stop: x is going to be its property whatever y you lay in.
    "futile_preparation": (
        P("You can stack up all the {y.pl} you want, {x.the}'s still gonna be {x.prop}.", x=("fault",), y="related", y_needs=("portable",)),
        P("No amount of {y.pl} ever made {x.a} one bit less {x.prop}.", x=("fault",), y="related", y_needs=("portable",)),
        P("Savin' up {y.pl} for the day {x.the} quits bein' {x.prop} is a mighty long wait.", x=("fault",), y="related", y_needs=("portable",)),
        P("Hangin' {y.a} over the door won't keep {x.the} from bein' {x.prop}.", x=("fault",), y="related", y_needs=("count", "portable")),
        P("Grandpa spent a whole summer gatherin' {y.pl} so {x.the} wouldn't be {x.prop}. {x.the} won.", x=("fault",), y="related", y_needs=("portable",)),
        P("You can {y.use} from sunup to sundown, and {x.the}'ll still be {x.prop} come mornin'.", x=("fault",), y="related"),
        P("Buyin' {y.a:bigger} won't make {x.the} any less {x.prop}.", x=("fault",), y="related", y_needs=("count", "portable")),
        P("Countin' your {y.pl} the night before won't make {x.the} any less {x.prop} in the mornin'.", x=("fault",), y="related", y_needs=("count", "portable")),
        P("Ain't no {y} big enough to keep {x.a} from bein' {x.prop}.", x=("fault",), y="related", y_needs=("count", "portable")),
        P("Fella who buys {y.a} to keep {x.the} from bein' {x.prop} ends up with {y.a} and {x.a_prop} both.", x=("fault",), y="related", y_needs=("portable",)),
        P("You can pray, you can plan, you can pile {y.pl} to the rafters, but {x.the}'s gonna be {x.prop}.", x=("fault",), y="related", y_needs=("portable",)),
        P("{x.the} don't care about your {y.pl}; it's gonna be {x.prop} all the same.", x=("fault",), y="related", y_needs=("portable",)),
        P("Sandbag the porch with {y.pl} if it makes you feel better, but {x.the}'s gonna be {x.prop} regardless.", x=("fault",), y="related", y_needs=("portable",)),
        P("Tyin' {y.a} to the porch rail won't stop {x.the} from bein' {x.prop}.", x=("fault",), y="related", y_needs=("count", "portable")),
        P("{y.using} all night won't keep {x.the} from bein' {x.prop} in the mornin'.", x=("fault",), y="related"),
        P("Lay in all the {y.pl} you like; {x.a_prop} don't read the almanac.", x=("fault",), y="related", y_needs=("portable",)),
    ),
    # Lacking the very thing you are known for, or sell, or make.
    "ironic_deficiency": (
        P("The fella who sells {x.pl} always has to borrow his neighbor's.", x=("ownable",)),
        P("The man who {x.uses} for a livin' ain't got {x.a} to his name.", x=("ownable",)),
        P("{x.a}'s always {x.prop} right up till you need it to be.", x=("virtue",)),
        P("The man with forty {x.pl} still can't find one when he needs to {x.use}.", x=("count", "portable")),
        P("The fella who {x.maker}s {x.pl} for the whole county has one at home that's missin' {x.part}.", x=("count", "ownable")),
        P("Funny thing: the folks who {x.maker} {x.pl} are always the ones doin' without.", x=("ownable",)),
        P("The {x.most} {x} in the county belongs to the one fella who never needs to {x.use}.", x=("count", "superlative", "virtue")),
        P("Every {x} in town is {x.prop} except the one you borrowed.", x=("count", "ownable", "virtue")),
        P("{x.a} can help the whole county {x.use} and still can't do a thing for itself."),
        P("Ask the man with a barn full of {x.pl} for one, and he's plumb out.", x=("count", "portable")),
        P("The one day you need {x.a} to be {x.prop} is the one day it ain't.", x=("virtue",)),
        P("A man can own a dozen {x.pl} and still have to {x.use} with his bare hands.", x=("count", "portable")),
        P("Ain't it funny how {x.a} that's {x.prop} for everybody else ain't never {x.prop} for the fella who owns it.", x=("ownable", "virtue")),
        P("The fella who {x.uses} for the whole county does it at home with {y.a}; he lent his own {x} out.", x=("count", "portable"), y="same_category", y_needs=("count", "portable")),
    ),
    # A thing is nothing but its parts or ingredients, with airs.
    "deconstruction": (
        P("{x.a} ain't nothin' but {x.parts} that decided to get along."),
        P("Take away {x.the_part} and {x.a} is just {x.part2} with big ideas."),
        P("Strip {x.the} down and all you got is {x.parts}, plus a whole lotta opinions."),
        P("Every {x} started out as {x.parts} mindin' their own business.", x=("count",)),
        P("Pull {x.a} apart and you'll find {x.parts}, but you won't find {x.a}."),
        P("{x.a}'s just {x.part} and {x.part2} that ain't had a fallin' out yet."),
        P("Folks admire {x.a}, but nobody ever tipped their hat to {x.part}."),
        P("{x.a} is only {x.part} till somebody adds {x.part2}."),
        P("Don't let {x.a} fool you; it's just {x.parts} in its Sunday best."),
        P("What's {x.a}, really? Just {x.parts} with somewhere to be."),
        P("Underneath every fine {x} is just {x.part} with a good reputation.", x=("count",)),
        P("You can call it {x.a} if you want, but it's {x.parts} all the same."),
        P("Leave out {x.the_part} and {x.a} is just {x.part2} and {x.part3} waitin' on a purpose."),
        P("Grandma always said {x.a} is only as good as its {x.bare_part}."),
        P("Ain't no such thing as {x.a}, just {x.parts} standin' close together."),
        P("{x.a} is {x.part}, {x.part2} and a little bit of luck."),
    ),
    # Complaining about a fault you have yourself: x and y share the property.
    "hypocritical_complaint": (
        P("That's {x.a} callin' {y.a} {x.prop}.", x=("fault",), y="same_prop"),
        P("{x.a} fussin' about {y.pl} bein' too {x.prop} oughta take a look in the trough.", x=("fault",), y="same_prop"),
        P("{x.the} says {y.the}'s too {x.prop}, and {y.the} ain't said a word.", x=("fault",), y="same_prop"),
        P("{x.a} that gripes about {x.prop} {y.pl} ain't looked in the rain barrel lately.", x=("fault",), y="same_prop"),
        P("Takes {x.a_prop} to spot {y.a_prop} from clear across the pasture.", x=("fault",), y="same_prop"),
        P("Never yet met {x.a} that didn't think {y.a} was too {x.prop}.", x=("fault",), y="same_prop"),
        P("When {x.the} calls {y.the} {x.prop}, that's a pot and a kettle if ever I saw one.", x=("fault",), y="same_prop"),
        P("Every {x} in the county complains about {x.prop} {y.pl}, and not one of 'em owns a mirror.", x=("count", "fault"), y="same_prop"),
        P("{x.a} hollerin' that {y.the}'s too {x.prop} is just hollerin' at its own reflection.", x=("fault",), y="same_prop"),
        P("Funny how {x.the} always reckons {y.the}'s the {x.prop} one.", x=("fault",), y="same_prop"),
        P("Ain't nobody complains about {x.prop} {y.pl} louder than {x.a}.", x=("fault",), y="same_prop"),
        P("If {x.a} tells you {y.a}'s too {x.prop}, consider the source.", x=("fault",), y="same_prop"),
        P("{x.a} complainin' about {y.a_prop}? That's rich, comin' from {x.a}.", x=("fault",), y="same_prop"),
        P("{x.the} spent all mornin' grumblin' that {y.the} was too {x.prop}. Pot, meet kettle.", x=("fault",), y="same_prop"),
        P("Don't take it to heart when {x.a} calls you {x.prop}; it's only talkin' about itself.", x=("fault",)),
        P("Lord save us from {x.a} preachin' to {y.a} about bein' {x.prop}.", x=("fault",), y="same_prop"),
    ),
    # Doing the thing and then acting surprised at what comes of it.
    "denial_of_consequences": (
        P("A man who buys {x.a} and says it ain't {x.prop} is fixin' to learn somethin'.", x=("fault", "ownable")),
        P("Sayin' {x.the} ain't {x.prop} don't make it one lick less {x.prop}.", x=("fault",)),
        P("If you grab {x.the} bare-handed, don't go blamin' it for bein' {x.prop}.", x=("fault", "handleable")),
        P("You let {x.a} in the [kitchen|parlor|bedroom], you don't get to complain it's {x.prop}.", x=("fault", "handleable")),
        P("Plantin' {y.pl} and hopin' for {x.pl} is how a fella ends up surprised come August.", y="any"),
        P("Nobody who's ever owned {x.a} believes you when you say yours ain't {x.prop}.", x=("fault", "count", "ownable")),
        P("Fella {x.using} all day swears he never laid a hand on {x.a}."),
        P("Leave {x.the} out on the porch overnight and don't you dare act surprised in the mornin'.", x=("portable",)),
        P("You can tell the sheriff {x.the} wasn't {x.prop}, but he's met {x.pl} before.", x=("fault",)),
        P("Don't go {y.using} with {x.a} and then wonder why it ain't workin'.", x=("handleable",), y="any"),
        P("Every year he swears {x.the} won't be {x.prop} this time, and every year it is.", x=("fault",)),
        P("Lettin' {x.a} in the house and hopin' it won't be {x.prop} ain't faith, it's foolishness.", x=("fault", "handleable")),
        P("He tried to {y.use} with {x.a} and blamed the weather when it didn't work.", x=("handleable",), y="any"),
        P("Ain't the {x}'s fault it's {x.prop}; you're the one who brought it home.", x=("fault", "count", "ownable")),
        P("A fella who keeps {x.pl} and swears they ain't {x.prop} has got his eyes shut tight.", x=("fault", "count", "ownable")),
        P("Act surprised all you want; {x.a} was {x.prop} when you found it.", x=("fault",)),
    ),
    # Things are what they are.
    "tautological_wisdom": (
        P("{x.a} is {x.a}, no matter what you call it."),
        P("{x.a}'s gonna do what {x.a} does."),
        P("If it helps you {x.use} and it's {x.prop}, it's probably {x.a}."),
        P("{x.a_prop} today is {x.a_prop} tomorrow, Lord willin'."),
        P("{x.the} does what {x.the} does, and the rest of us just live here."),
        P("Grandpa used to say {x.a} is only {x.a} till it ain't."),
        P("When {x.the}'s {x.prop}, it's {x.prop}, and there ain't no arguin' with it."),
        P("Ain't nothin' in this world as much like {x.a} as {x.a}."),
        P("{x.a} that's {x.prop} is {x.a_prop}, and that's all there is to say about it."),
        P("You can't make {x.a} into anything but {x.a}, so quit tryin'."),
        P("The thing about {x.pl} is, {x.theyre} {x.pl}."),
        P("Once {x.a}, always {x.a}, and that's the gospel truth."),
        P("{x.a} don't need to be nothin' but {x.a}."),
        P("Say what you will about {x.pl}, {x.they} sure {x.are} {x.pl}."),
        P("There's two kinds of {x.pl}: {x.pl}, and everything else."),
        P("{x.a} is {x.prop} 'cause it's {x.a}, and it's {x.a} 'cause it's {x.prop}."),
    ),
}
