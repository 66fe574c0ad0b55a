"""A generated world of people, cities and organisations whose facts stay consistent across documents.

The web and multilingual domains describe this world in six languages from sentence templates.
Everything is drawn from a seeded ``random.Random``, so the same seed gives the same world.
Vocabulary is deliberately small (syllable-built names, ten professions, eight fields): a
1–5M-parameter model can then learn the structure within a few hundred steps.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

LANGS = ("en", "fr", "es", "de", "it", "pt")
LANG_NAMES = {"en": "English", "fr": "French", "es": "Spanish", "de": "German", "it": "Italian", "pt": "Portuguese"}

_SYLLABLES = ("ka", "ve", "lo", "ri", "sa", "mo", "ten", "dar", "el", "na", "bro", "fi", "ul", "gan", "ser", "tho",
              "mi", "ra", "dun", "co", "pe", "wyn", "as", "lin", "or", "vi", "ham", "te")
_FIRST_NAMES = ("Alda", "Bruno", "Clara", "Dario", "Elin", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira", "Luca",
                "Mara", "Nils", "Olga", "Paulo", "Rosa", "Sami", "Tara", "Ugo", "Vera", "Wim", "Yara", "Zeno",
                "Ada", "Emil", "Lena", "Otto", "Rita", "Teo")
_ORG_KINDS = ("Guild", "Press", "Works", "Institute", "Company", "Bank", "Theatre", "School")

# (en, fr, es, de, it, pt); English keeps its article ("an engineer").
PROFESSIONS = (
    ("a painter", "peintre", "pintor", "Maler", "pittore", "pintor"),
    ("a teacher", "enseignant", "maestro", "Lehrer", "insegnante", "professor"),
    ("a doctor", "médecin", "médico", "Arzt", "medico", "médico"),
    ("an engineer", "ingénieur", "ingeniero", "Ingenieur", "ingegnere", "engenheiro"),
    ("a farmer", "fermier", "granjero", "Bauer", "contadino", "agricultor"),
    ("a poet", "poète", "poeta", "Dichter", "poeta", "poeta"),
    ("a baker", "boulanger", "panadero", "Bäcker", "fornaio", "padeiro"),
    ("a sailor", "marin", "marinero", "Seemann", "marinaio", "marinheiro"),
    ("a judge", "juge", "juez", "Richter", "giudice", "juiz"),
    ("an architect", "architecte", "arquitecto", "Architekt", "architetto", "arquiteto"),
)
FIELDS = (
    ("music", "la musique", "la música", "die Musik", "la musica", "a música"),
    ("medicine", "la médecine", "la medicina", "die Medizin", "la medicina", "a medicina"),
    ("trade", "le commerce", "el comercio", "der Handel", "il commercio", "o comércio"),
    ("shipping", "la navigation", "la navegación", "die Schifffahrt", "la navigazione", "a navegação"),
    ("printing", "l'imprimerie", "la imprenta", "der Buchdruck", "la stampa", "a imprensa"),
    ("farming", "l'agriculture", "la agricultura", "die Landwirtschaft", "l'agricoltura", "a agricultura"),
    ("law", "le droit", "el derecho", "das Recht", "il diritto", "o direito"),
    ("science", "la science", "la ciencia", "die Wissenschaft", "la scienza", "a ciência"),
)

# Fact sentences. The slot that a cloze question asks for is the first placeholder after the
# subject, so "In summary, P was born in" -> " C" is a natural place to cut (see corpus.cloze_eval).
TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "born": "{p} was born in {c} in {y}.", "prof": "{p} worked as {prof}.", "works": "{p} worked for {o}.",
        "city": "{c} is a city in {k}.", "river": "{c} lies on the river {r}.", "cfound": "{c} was founded in {y}.",
        "obase": "{o} is based in {c}.", "ofound": "{o} was founded in {y}.", "ofield": "The field of {o} is {field}.",
        "summary": "In summary, ", "people_of": "People born in {c}:", "staff_of": "People who worked for {o}:",
        "again": "As noted above, ",
    },
    "fr": {
        "born": "{p} naît à {c} en {y}.", "prof": "{p} travaille comme {prof}.", "works": "{p} travaille pour {o}.",
        "city": "{c} est une ville de {k}.", "river": "{c} se trouve sur la rivière {r}.",
        "cfound": "{c} est fondée en {y}.", "obase": "{o} a son siège à {c}.",
        "ofound": "La création de {o} date de {y}.", "ofield": "Le domaine de {o} est {field}.",
        "summary": "En résumé, ", "people_of": "Personnes nées à {c} :", "staff_of": "Personnes ayant travaillé pour {o} :",
        "again": "Comme indiqué plus haut, ",
    },
    "es": {
        "born": "{p} nació en {c} en {y}.", "prof": "{p} trabajó como {prof}.", "works": "{p} trabajó para {o}.",
        "city": "{c} es una ciudad de {k}.", "river": "{c} está junto al río {r}.", "cfound": "{c} fue fundada en {y}.",
        "obase": "{o} tiene su sede en {c}.", "ofound": "{o} se fundó en {y}.", "ofield": "El campo de {o} es {field}.",
        "summary": "En resumen, ", "people_of": "Personas nacidas en {c}:", "staff_of": "Personas que trabajaron para {o}:",
        "again": "Como se dijo antes, ",
    },
    "de": {
        "born": "{p} wurde {y} in {c} geboren.", "prof": "{p} arbeitete als {prof}.", "works": "{p} arbeitete für {o}.",
        "city": "{c} ist eine Stadt in {k}.", "river": "{c} liegt am Fluss {r}.", "cfound": "{c} wurde {y} gegründet.",
        "obase": "{o} hat ihren Sitz in {c}.", "ofound": "{o} wurde {y} gegründet.",
        "ofield": "Das Fachgebiet von {o} ist {field}.",
        "summary": "Zusammengefasst: ", "people_of": "In {c} geboren:", "staff_of": "Für {o} tätig:",
        "again": "Wie oben erwähnt: ",
    },
    "it": {
        "born": "{p} nacque a {c} nel {y}.", "prof": "{p} lavorò come {prof}.", "works": "{p} lavorò per {o}.",
        "city": "{c} è una città di {k}.", "river": "{c} si trova sul fiume {r}.", "cfound": "{c} fu fondata nel {y}.",
        "obase": "{o} ha sede a {c}.", "ofound": "{o} fu fondata nel {y}.", "ofield": "Il campo di {o} è {field}.",
        "summary": "In sintesi, ", "people_of": "Persone nate a {c}:", "staff_of": "Persone che lavorarono per {o}:",
        "again": "Come detto sopra, ",
    },
    "pt": {
        "born": "{p} nasceu em {c} em {y}.", "prof": "{p} trabalhou como {prof}.", "works": "{p} trabalhou para {o}.",
        "city": "{c} é uma cidade de {k}.", "river": "{c} fica junto ao rio {r}.", "cfound": "{c} foi fundada em {y}.",
        "obase": "{o} tem sede em {c}.", "ofound": "{o} foi fundada em {y}.", "ofield": "O campo de {o} é {field}.",
        "summary": "Em resumo, ", "people_of": "Pessoas nascidas em {c}:", "staff_of": "Pessoas que trabalharam para {o}:",
        "again": "Como dito acima, ",
    },
}
# Sentences that carry no fact of the schema (so they can never contradict one); {c} is any city.
FILLERS: dict[str, tuple[str, ...]] = {
    "en": ("{c} has a busy market on the main square.", "The archives of {c} hold many old letters.",
           "Many visitors come to {c} in the summer.", "The old bridge of {c} is often painted.",
           "Winters in {c} are long and cold.", "A small museum in {c} tells the story of the region."),
    "fr": ("{c} a un marché animé sur la place principale.", "Les archives de {c} gardent de vieilles lettres.",
           "Beaucoup de visiteurs viennent à {c} en été.", "Le vieux pont de {c} est souvent peint.",
           "Les hivers à {c} sont longs et froids.", "Un petit musée à {c} raconte l'histoire de la région."),
    "es": ("{c} tiene un mercado animado en la plaza mayor.", "Los archivos de {c} guardan cartas antiguas.",
           "Muchos visitantes llegan a {c} en verano.", "El viejo puente de {c} aparece en muchas pinturas.",
           "Los inviernos en {c} son largos y fríos.", "Un pequeño museo en {c} cuenta la historia de la región."),
    "de": ("{c} hat einen belebten Markt auf dem Hauptplatz.", "Das Archiv von {c} bewahrt viele alte Briefe.",
           "Viele Besucher kommen im Sommer nach {c}.", "Die alte Brücke von {c} wird oft gemalt.",
           "Die Winter in {c} sind lang und kalt.", "Ein kleines Museum in {c} erzählt die Geschichte der Region."),
    "it": ("{c} ha un mercato vivace nella piazza principale.", "Gli archivi di {c} conservano molte lettere antiche.",
           "Molti visitatori arrivano a {c} in estate.", "Il vecchio ponte di {c} è spesso dipinto.",
           "Gli inverni a {c} sono lunghi e freddi.", "Un piccolo museo a {c} racconta la storia della regione."),
    "pt": ("{c} tem um mercado animado na praça principal.", "Os arquivos de {c} guardam muitas cartas antigas.",
           "Muitos visitantes chegam a {c} no verão.", "A velha ponte de {c} aparece em muitas pinturas.",
           "Os invernos em {c} são longos e frios.", "Um pequeno museu em {c} conta a história da região."),
}


@dataclass(frozen=True)
class City:
    name: str
    country: str
    river: str
    founded: int


@dataclass(frozen=True)
class Org:
    name: str
    city: str
    founded: int
    field: int  # index into FIELDS


@dataclass(frozen=True)
class Person:
    name: str
    city: str      # birthplace
    born: int
    prof: int      # index into PROFESSIONS
    org: str       # employer


@dataclass
class World:
    cities: list[City]
    orgs: list[Org]
    people: list[Person]            # people that training documents talk about
    heldout_people: list[Person]    # never mentioned in training: evaluation and validation only

    def city(self, name: str) -> City:
        return self._cities[name]

    def org(self, name: str) -> Org:
        return self._orgs[name]

    def __post_init__(self) -> None:
        self._cities = {c.name: c for c in self.cities}
        self._orgs = {o.name: o for o in self.orgs}


def _word(rng: random.Random, n: int, used: set[str]) -> str:
    for _ in range(1000):
        w = "".join(rng.choice(_SYLLABLES) for _ in range(n)).capitalize()
        if w not in used and len(w) > 2:
            used.add(w)
            return w
    raise RuntimeError("ran out of names: enlarge _SYLLABLES")


def build_world(rng: random.Random, n_people: int, heldout_fraction: float = 0.2) -> World:
    """A consistent world sized for ``n_people`` people (cities and organisations scale with it)."""
    used: set[str] = set()
    n_cities = max(8, n_people // 12)
    n_orgs = max(6, n_people // 16)
    countries = [_word(rng, 2, used) + rng.choice(("ia", "land", "ora")) for _ in range(6)]
    rivers = [_word(rng, rng.choice((1, 2)), used) for _ in range(max(5, n_cities // 2))]
    cities = [City(_word(rng, 2, used), rng.choice(countries), rng.choice(rivers), rng.randrange(900, 1700))
              for _ in range(n_cities)]
    orgs, org_names = [], set()
    while len(orgs) < n_orgs:
        c = rng.choice(cities)
        name = f"{c.name} {rng.choice(_ORG_KINDS)}"
        if name in org_names:
            continue
        org_names.add(name)
        orgs.append(Org(name, c.name, rng.randrange(1700, 1950), rng.randrange(len(FIELDS))))
    n_total = n_people + max(4, int(n_people * heldout_fraction))
    # A small pool of surnames keeps the vocabulary small; first name x surname keeps people distinct.
    surnames = [_word(rng, 2, used) for _ in range(max(8, n_total // 6))]
    if n_total > len(_FIRST_NAMES) * len(surnames):
        raise ValueError("too many people for the name pools")
    people, names = [], set()
    while len(people) < n_total:
        name = f"{rng.choice(_FIRST_NAMES)} {rng.choice(surnames)}"
        if name in names:
            continue
        names.add(name)
        people.append(Person(name, rng.choice(cities).name, rng.randrange(1750, 1990),
                             rng.randrange(len(PROFESSIONS)), rng.choice(orgs).name))
    return World(cities, orgs, people[:n_people], people[n_people:])


def fact(world: World, lang: str, key: str, *, p: Person | None = None, c: City | None = None,
         o: Org | None = None) -> str:
    """One fact sentence in ``lang`` (``key`` is a TEMPLATES key) filled from the world's facts."""
    li = LANGS.index(lang)
    t = TEMPLATES[lang][key]
    if p is not None:
        return t.format(p=p.name, c=p.city, y=p.born, prof=PROFESSIONS[p.prof][li], o=p.org)
    if c is not None:
        return t.format(c=c.name, k=c.country, r=c.river, y=c.founded)
    assert o is not None
    return t.format(o=o.name, c=o.city, y=o.founded, field=FIELDS[o.field][li])
