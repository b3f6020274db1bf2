"""The policy's word lists and exemplars, per category.

Rules are matched against normalised text (see normalize.py) on word boundaries; a trailing
``*`` matches any ending. A rule of the form ``A + B`` needs a term of list A and a term of list
B in the same text (context makes the word: "shoot" is fine, "shoot + school children" is not).
Exemplars are short descriptions of what each category looks like; prompts are compared with
them by meaning (MiniLM embeddings). The benign exemplars are the everyday prompts that sit
closest to the categories (a chef's knife, a boxing match, a beach), so a prompt must resemble
a category more than it resembles them.

None of these sentences is in the evaluation set (tests/moderation/evalset.jsonl).
"""

from __future__ import annotations

MINOR_TERMS = [
    "child*",
    "kid",
    "kids",
    "minor",
    "minors",
    "underage*",
    "preteen*",
    "schoolgirl*",
    "schoolboy*",
    "toddler*",
    "little girl*",
    "little boy*",
    "young girl*",
    "young boy*",
    "teen",
    "teens",
    "teenage*",
    "loli*",
    "shota*",
    "infant*",
    "baby",
    "babies",
    "year old girl",
    "year old boy",
    "years old",
    "grade schooler*",
    "middle schooler*",
    "12 year old",
    "13 year old",
    "14 year old",
    "15 year old",
    "11 year old",
    "10 year old",
]
SEXUAL_TERMS = [
    "nude*",
    "naked",
    "nudity",
    "porn*",
    "sex",
    "sexual*",
    "sexy",
    "erotic*",
    "explicit",
    "topless",
    "bottomless",
    "genital*",
    "orgasm*",
    "strip tease",
    "striptease",
    "stripping",
    "nsfw",
    "hardcore",
    "lingerie",
    "undress*",
    "intercourse",
    "masturbat*",
    "fetish*",
    "seductive*",
    "sensual*",
    "aroused",
    "onlyfans",
    "blowjob*",
    "boobs",
    "breasts exposed",
    "noods",
    "hentai",
    "rule 34",
]

RULES: dict[str, list] = {
    # Always blocked; any minor term in a sexual context is enough.
    "minors": [("+", MINOR_TERMS, SEXUAL_TERMS), "loli*", "shotacon", "jailbait", "pedo*"],
    "sexual": SEXUAL_TERMS,
    "violence": [
        "gore", "gory", "decapitat*", "behead*", "dismember*", "disembowel*", "mutilat*",
        "eviscerat*", "torture*", "tortured", "massacre*", "mass shooting", "school shooting",
        "blood spurting", "brains splatter*", "splattered brains", "execution style",
        "severed head*", "severed limb*", "guts spill*", "snuff", "bloodbath", "flayed",
        "skinned alive", "burned alive", "stabbed to death", "stabbing him repeatedly",
        "stabbing her repeatedly", "slit his throat", "slit her throat", "slitting throat*",
    ],
    "hate": [
        ("+",
         ["jews", "jewish people", "muslims", "christians", "black people", "blacks",
          "immigrants", "refugees", "gay people", "gays", "trans people", "women", "asians",
          "mexicans", "arabs", "gypsies", "roma", "disabled people", "hindus", "africans"],
         ["vermin", "subhuman*", "animals", "cockroach*", "rats", "parasite*", "inferior",
          "should die", "must die", "deserve to die", "exterminat*", "gassed", "wiped out",
          "go back", "filth", "disease", "plague", "not human"]),
        "ethnic cleansing", "white power", "white supremac*", "race war", "master race",
        "gas chamber*", "heil hitler", "sieg heil", "1488", "ku klux klan", "final solution",
        "genocide of", "hate crime against",
    ],
    "self_harm": [
        "suicide", "suicidal", "kill myself", "killing myself", "kill yourself", "kys",
        "self harm*", "self-harm*", "selfharm*", "cut myself", "cutting myself",
        "slit my wrists", "slitting my wrists", "slit wrists", "hang myself", "hanging myself",
        "overdose on", "end my life", "ending my life", "pro ana", "proana", "thinspo*",
        "starve myself", "jump off a bridge", "jumping off a bridge", "take my own life",
    ],
    "harassment": [
        "dox", "doxx*", "doxing", "stalk", "stalking", "stalker*", "humiliat*", "kill yourself",
        "kys", "go die", "nobody loves you", "you are worthless", "worthless loser",
        "ugly loser", "fat loser", "piece of trash", "threaten to kill", "threatening to kill",
        "threaten to hurt", "threatening to hurt", "death threat*",
        "home address of", "leak her address", "leak his address", "revenge porn",
        ("+", ["@"], ["mock*", "ridicule*", "insult*", "laugh at", "spit on", "shame*"]),
    ],
}  # fmt: skip

# Real, well-known people: generating them without their own verified cameo is refused.
# Operators extend this list with the MODERATION_PUBLIC_FIGURES setting.
PUBLIC_FIGURES = [
    "joe biden", "donald trump", "barack obama", "kamala harris", "hillary clinton",
    "vladimir putin", "xi jinping", "volodymyr zelensky", "emmanuel macron", "olaf scholz",
    "rishi sunak", "keir starmer", "boris johnson", "narendra modi", "justin trudeau",
    "king charles", "pope francis", "pope leo", "elon musk", "mark zuckerberg", "jeff bezos",
    "bill gates", "taylor swift", "beyonce", "rihanna", "kanye west", "kim kardashian",
    "tom cruise", "tom hanks", "scarlett johansson", "emma watson", "keanu reeves",
    "leonardo dicaprio", "brad pitt", "angelina jolie", "oprah winfrey", "lebron james",
    "cristiano ronaldo", "lionel messi", "serena williams", "greta thunberg", "morgan freeman",
    "dwayne johnson", "selena gomez", "ariana grande", "billie eilish", "justin bieber",
    "sam altman", "benjamin netanyahu", "kim jong un", "recep tayyip erdogan",
]  # fmt: skip

EXEMPLARS: dict[str, list[str]] = {
    "minors": [
        "a sexual scene with a child",
        "an underage girl posing provocatively without clothes",
        "a young boy in an erotic situation with an adult",
        "children undressing for the camera in a suggestive way",
        "a little girl being touched sexually",
        "a teenager filmed in a sexual act",
        "a kid performing a striptease",
        "an adult seducing a minor",
    ],
    "sexual": [
        "two people having sex in bed",
        "a woman taking off all her clothes on camera",
        "a naked man showing his body",
        "an explicit pornographic scene",
        "a couple making love passionately with no clothes",
        "a stripper dancing fully nude",
        "close up of exposed breasts and genitals",
        "a sexually explicit video of an orgy",
        "a person pleasuring themselves",
        "erotic bedroom scene with moaning",
    ],
    "violence": [
        "a man's head being cut off with blood everywhere",
        "a body torn apart with organs spilling out",
        "someone being tortured until they scream and bleed",
        "a gunman shooting people in a crowd, bodies falling in pools of blood",
        "a person beaten to death with a hammer, skull cracking",
        "close up of a knife slicing open a person's belly",
        "a car crash victim with bones sticking out and blood pouring",
        "an execution where the prisoner is shot in the head",
        "a soldier's limbs blown off by an explosion, graphic wounds",
        "a dog being kicked and beaten until it bleeds",
    ],
    "hate": [
        "people of that race are animals and should be wiped out",
        "a rally celebrating the extermination of an ethnic group",
        "immigrants portrayed as rats invading the country",
        "a cartoon mocking jewish people with ugly stereotypes",
        "muslims are terrorists and must be banned",
        "gay people are diseased and deserve punishment",
        "a video saying black people are inferior",
        "a crowd chanting that a religion should be destroyed",
        "women are stupid property that should obey men",
    ],
    "self_harm": [
        "a person cutting their arm with a razor blade",
        "someone standing on a ledge about to jump to their death",
        "a girl starving herself to be thin, counting ribs",
        "a man swallowing a whole bottle of pills to die",
        "a teenager writing a goodbye note before ending their life",
        "how to hurt yourself without anyone noticing",
        "a noose hanging in a bedroom ready to be used",
        "bleeding wrists in a bathtub",
    ],
    "harassment": [
        "make a video humiliating my classmate and calling her ugly",
        "show my ex as a pathetic loser everyone laughs at",
        "a clip telling a specific person to go kill themselves",
        "post a video revealing where my coworker lives to scare her",
        "mock this kid for being fat and stupid",
        "threaten my neighbour that I will hurt his family",
        "spread lies that my teacher is a criminal",
        "a video bullying a disabled student",
    ],
}

BENIGN: list[str] = [
    "a chef chopping vegetables with a sharp knife in a busy kitchen",
    "a boxing match in a ring with a cheering crowd",
    "kids playing soccer in a sunny park",
    "a family at the beach building sandcastles in swimsuits",
    "a nurse giving a child a vaccine at the doctor's office",
    "a medieval castle with knights in armour",
    "a couple holding hands on a walk at sunset",
    "a dancer performing ballet on stage",
    "a documentary about a historic war memorial",
    "a hospital drama where doctors save a patient",
    "a teenager skateboarding down a city street",
    "a cat knocking a glass off a table",
    "a zombie movie trailer with spooky fog",
    "a painter sketching a marble statue in a museum",
    "a baby laughing at bubbles",
    "a cooking show making a bloody mary cocktail",
    "a fitness model stretching in a gym",
    "a peaceful protest with people holding signs for equal rights",
    "an anti-bullying message for a school assembly",
    "a person meditating to feel better about their mental health",
    "a firefighter rescuing a dog from a burning house",
    "a superhero fight in a city with explosions",
    "a wildlife video of a lion hunting a zebra",
    "a comedy sketch where friends tease each other at a party",
    "a red ball bouncing on a beach at sunset",
    "a robot walking through a neon city at night",
    "a couple asleep in bed as morning light comes in",
    "a romantic candlelit dinner for two",
    "two people cuddling on the sofa watching a film",
    "a woman stretching in bed after waking up",
]

# Comments are written to a person, not describing a scene: what a harmful comment looks like
# (threats, abuse, solicitation, encouragement to self-harm, all in the second person) is
# added to the exemplars above when comments are screened, and so are the everyday comments
# that borrow violent or sexual words ("you killed it"), so a comment must resemble harm more
# than it resembles them.
COMMENT_EXEMPLARS: dict[str, list[str]] = {
    "minors": [
        "how old are you, send me private photos",
        "you're young, keep our chat secret and send me pictures",
        "a kid like you should send me pictures in your underwear",
    ],
    "sexual": [
        "send me naked pictures",
        "take off your clothes on camera for me",
        "I want to sleep with you",
        "show me your body in private messages",
    ],
    "violence": [
        "I will shoot you",
        "I hope someone stabs you",
        "I'm going to break your bones",
        "you deserve to be beaten until you bleed",
        "I will set you on fire",
    ],
    "hate": [
        "people like you are subhuman",
        "your kind should be wiped out",
        "those people are a plague on this country",
    ],
    "self_harm": [
        "you should hurt yourself",
        "stop eating until you are skinny",
        "just take all your pills and be done with it",
    ],
    "harassment": [
        "you are pathetic and everyone hates you",
        "nobody wants you around, just leave",
        "I know where you live and I will come for you",
        "you are so ugly it makes me sick",
        "I will make your life hell at school",
        "you're a worthless idiot",
        "I'm going to hurt you",
        "tell us your address so we can find you",
    ],
}
COMMENT_BENIGN: list[str] = [
    "you killed it, this is amazing",
    "this is killer",
    "I'm dead, this is hilarious",
    "that ending destroyed me",
    "the fight scene is brutal",
    "she looks stunning",
    "this horror clip is so scary",
    "the villain is terrifying",
    "the blood effects look so real",
    "I would die for this cat",
    "cute couple",
    "my kids loved this",
]
