"""Word pools the synthetic world is drawn from: names, places, fields, industries, filler prose."""

from __future__ import annotations

# First and last names from several cultures; a person takes a first name and usually a last name
# from the same culture.
NAME_POOLS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "english": (
        ("James", "Emily", "Oliver", "Charlotte", "Henry", "Grace", "Thomas", "Alice", "George", "Hannah",
         "Samuel", "Lucy", "Daniel", "Ruth", "Edward", "Clara"),
        ("Whitmore", "Ashford", "Caldwell", "Pemberton", "Hargreaves", "Blackwood", "Fairbanks", "Thornton",
         "Langley", "Holloway", "Marsh", "Redfern", "Atherton", "Kingsley", "Osborne", "Winslow"),
    ),
    "nigerian": (
        ("Chinedu", "Ngozi", "Oluwaseun", "Amaka", "Emeka", "Funmilayo", "Tunde", "Chiamaka", "Ifeanyi",
         "Adaeze", "Babatunde", "Yetunde", "Obinna", "Nneka", "Kelechi", "Folake"),
        ("Okafor", "Adeyemi", "Nwosu", "Balogun", "Eze", "Okonkwo", "Adebayo", "Uchenna", "Afolabi", "Obi",
         "Ogunleye", "Nnamdi", "Akinola", "Chukwu", "Oyelaran", "Iwu"),
    ),
    "indian": (
        ("Priya", "Arjun", "Ananya", "Rohan", "Kavya", "Vikram", "Meera", "Aditya", "Lakshmi", "Rahul",
         "Divya", "Sanjay", "Nisha", "Karthik", "Pooja", "Aravind"),
        ("Sharma", "Iyer", "Nair", "Reddy", "Patel", "Menon", "Chatterjee", "Kulkarni", "Bhattacharya",
         "Deshpande", "Rao", "Pillai", "Banerjee", "Joshi", "Venkataraman", "Gupta"),
    ),
    "chinese": (
        ("Wei", "Mei", "Jian", "Xiu", "Lei", "Fang", "Hao", "Ling", "Jun", "Yan", "Zhen", "Qing", "Bo",
         "Hui", "Tao", "Lan"),
        ("Zhang", "Wang", "Chen", "Liu", "Huang", "Zhao", "Zhou", "Wu", "Xu", "Sun", "Ma", "Hu", "Guo",
         "Lin", "He", "Gao"),
    ),
    "spanish": (
        ("Lucia", "Mateo", "Sofia", "Javier", "Carmen", "Diego", "Elena", "Pablo", "Isabel", "Alvaro",
         "Marta", "Sergio", "Paula", "Andres", "Rocio", "Ignacio"),
        ("Garcia", "Fernandez", "Lopez", "Martinez", "Sanchez", "Romero", "Navarro", "Torres", "Dominguez",
         "Vazquez", "Ramos", "Gil", "Serrano", "Molina", "Castillo", "Ortega"),
    ),
    "german": (
        ("Lukas", "Anna", "Felix", "Lena", "Jonas", "Marie", "Maximilian", "Sophie", "Tobias", "Katrin",
         "Matthias", "Julia", "Stefan", "Ute", "Florian", "Greta"),
        ("Schneider", "Fischer", "Weber", "Becker", "Hoffmann", "Schulz", "Koch", "Richter", "Wolf",
         "Neumann", "Zimmermann", "Kruger", "Hartmann", "Lange", "Brandt", "Vogel"),
    ),
    "french": (
        ("Camille", "Louis", "Chloe", "Antoine", "Manon", "Hugo", "Juliette", "Mathieu", "Elodie", "Julien",
         "Margaux", "Nicolas", "Amelie", "Baptiste", "Solene", "Remi"),
        ("Dubois", "Lefebvre", "Moreau", "Laurent", "Girard", "Bonnet", "Dupont", "Lambert", "Fontaine",
         "Rousseau", "Vincent", "Muller", "Faure", "Mercier", "Blanc", "Chevalier"),
    ),
    "japanese": (
        ("Haruto", "Yui", "Sota", "Aoi", "Ren", "Hina", "Kaito", "Sakura", "Takumi", "Mio", "Riku", "Yuna",
         "Daiki", "Emi", "Kenji", "Naomi"),
        ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi",
         "Kato", "Yoshida", "Yamada", "Sasaki", "Matsumoto", "Inoue", "Kimura"),
    ),
    "arabic": (
        ("Omar", "Layla", "Yusuf", "Amira", "Karim", "Nadia", "Tariq", "Salma", "Hassan", "Rania", "Khalid",
         "Yasmin", "Samir", "Huda", "Faris", "Leila"),
        ("Haddad", "Mansour", "Khalil", "Nasser", "Saleh", "Farouk", "Aziz", "Hamdan", "Rahman", "Qureshi",
         "Bakri", "Darwish", "Jaber", "Sabbagh", "Tamimi", "Zaki"),
    ),
    "polish": (
        ("Jakub", "Zofia", "Kacper", "Agnieszka", "Marek", "Katarzyna", "Piotr", "Magdalena", "Tomasz",
         "Ewa", "Pawel", "Joanna", "Wojciech", "Alicja", "Krzysztof", "Beata"),
        ("Kowalski", "Nowak", "Wisniewski", "Wojcik", "Kaminski", "Lewandowski", "Zielinski", "Szymanski",
         "Dabrowski", "Kozlowski", "Jankowski", "Mazur", "Krawczyk", "Piotrowski", "Grabowski", "Pawlak"),
    ),
}

# (city, country); the world draws its cities from here, in a seeded order.
CITIES: tuple[tuple[str, str], ...] = (
    ("Lyon", "France"), ("Marseille", "France"), ("Toulouse", "France"), ("Nantes", "France"),
    ("Bordeaux", "France"), ("Lille", "France"), ("Hamburg", "Germany"), ("Munich", "Germany"),
    ("Cologne", "Germany"), ("Leipzig", "Germany"), ("Dresden", "Germany"), ("Stuttgart", "Germany"),
    ("Bremen", "Germany"), ("Valencia", "Spain"), ("Seville", "Spain"), ("Bilbao", "Spain"),
    ("Zaragoza", "Spain"), ("Malaga", "Spain"), ("Granada", "Spain"), ("Porto", "Portugal"),
    ("Coimbra", "Portugal"), ("Braga", "Portugal"), ("Turin", "Italy"), ("Bologna", "Italy"),
    ("Naples", "Italy"), ("Florence", "Italy"), ("Genoa", "Italy"), ("Verona", "Italy"),
    ("Rotterdam", "Netherlands"), ("Utrecht", "Netherlands"), ("Eindhoven", "Netherlands"),
    ("Antwerp", "Belgium"), ("Ghent", "Belgium"), ("Liege", "Belgium"), ("Gothenburg", "Sweden"),
    ("Malmo", "Sweden"), ("Uppsala", "Sweden"), ("Bergen", "Norway"), ("Trondheim", "Norway"),
    ("Aarhus", "Denmark"), ("Odense", "Denmark"), ("Tampere", "Finland"), ("Turku", "Finland"),
    ("Krakow", "Poland"), ("Gdansk", "Poland"), ("Wroclaw", "Poland"), ("Poznan", "Poland"),
    ("Brno", "Czech Republic"), ("Ostrava", "Czech Republic"), ("Graz", "Austria"),
    ("Salzburg", "Austria"), ("Linz", "Austria"), ("Basel", "Switzerland"), ("Lausanne", "Switzerland"),
    ("Manchester", "United Kingdom"), ("Leeds", "United Kingdom"), ("Bristol", "United Kingdom"),
    ("Glasgow", "United Kingdom"), ("Cardiff", "United Kingdom"), ("Belfast", "United Kingdom"),
    ("Cork", "Ireland"), ("Galway", "Ireland"), ("Lagos", "Nigeria"), ("Ibadan", "Nigeria"),
    ("Enugu", "Nigeria"), ("Kano", "Nigeria"), ("Accra", "Ghana"), ("Kumasi", "Ghana"),
    ("Nairobi", "Kenya"), ("Mombasa", "Kenya"), ("Durban", "South Africa"), ("Cape Town", "South Africa"),
    ("Pune", "India"), ("Chennai", "India"), ("Kochi", "India"), ("Jaipur", "India"),
    ("Hyderabad", "India"), ("Kolkata", "India"), ("Chengdu", "China"), ("Hangzhou", "China"),
    ("Wuhan", "China"), ("Xiamen", "China"), ("Nanjing", "China"), ("Qingdao", "China"),
    ("Osaka", "Japan"), ("Sapporo", "Japan"), ("Fukuoka", "Japan"), ("Kyoto", "Japan"),
    ("Sendai", "Japan"), ("Busan", "South Korea"), ("Daegu", "South Korea"), ("Alexandria", "Egypt"),
    ("Casablanca", "Morocco"), ("Fez", "Morocco"), ("Tunis", "Tunisia"), ("Amman", "Jordan"),
    ("Beirut", "Lebanon"), ("Izmir", "Turkey"), ("Bursa", "Turkey"), ("Monterrey", "Mexico"),
    ("Guadalajara", "Mexico"), ("Puebla", "Mexico"), ("Medellin", "Colombia"), ("Cali", "Colombia"),
    ("Cordoba", "Argentina"), ("Rosario", "Argentina"), ("Valparaiso", "Chile"), ("Arequipa", "Peru"),
    ("Curitiba", "Brazil"), ("Recife", "Brazil"), ("Porto Alegre", "Brazil"), ("Salvador", "Brazil"),
    ("Seattle", "United States"), ("Denver", "United States"), ("Austin", "United States"),
    ("Pittsburgh", "United States"), ("Portland", "United States"), ("Baltimore", "United States"),
    ("Minneapolis", "United States"), ("Raleigh", "United States"), ("Calgary", "Canada"),
    ("Winnipeg", "Canada"), ("Halifax", "Canada"), ("Quebec City", "Canada"), ("Adelaide", "Australia"),
    ("Perth", "Australia"), ("Hobart", "Australia"), ("Wellington", "New Zealand"),
    ("Christchurch", "New Zealand"), ("Dunedin", "New Zealand"),
)

# field of study -> what a person who studied it works as
FIELDS: dict[str, str] = {
    "chemistry": "chemist", "physics": "physicist", "economics": "economist",
    "computer science": "software engineer", "biology": "biologist", "history": "historian",
    "architecture": "architect", "mathematics": "mathematician", "law": "lawyer",
    "medicine": "physician", "music": "composer", "journalism": "journalist", "linguistics": "linguist",
    "civil engineering": "civil engineer", "philosophy": "philosopher", "astronomy": "astronomer",
    "geology": "geologist", "statistics": "statistician",
}

FIELDS_FOREIGN: dict[str, dict[str, str]] = {
    "fr": {"chemistry": "chimie", "physics": "physique", "economics": "économie",
           "computer science": "informatique", "biology": "biologie", "history": "histoire",
           "architecture": "architecture", "mathematics": "mathématiques", "law": "droit",
           "medicine": "médecine", "music": "musique", "journalism": "journalisme",
           "linguistics": "linguistique", "civil engineering": "génie civil", "philosophy": "philosophie",
           "astronomy": "astronomie", "geology": "géologie", "statistics": "statistique"},
    "de": {"chemistry": "Chemie", "physics": "Physik", "economics": "Wirtschaftswissenschaften",
           "computer science": "Informatik", "biology": "Biologie", "history": "Geschichte",
           "architecture": "Architektur", "mathematics": "Mathematik", "law": "Rechtswissenschaft",
           "medicine": "Medizin", "music": "Musik", "journalism": "Journalismus",
           "linguistics": "Sprachwissenschaft", "civil engineering": "Bauingenieurwesen",
           "philosophy": "Philosophie", "astronomy": "Astronomie", "geology": "Geologie",
           "statistics": "Statistik"},
    "es": {"chemistry": "química", "physics": "física", "economics": "economía",
           "computer science": "informática", "biology": "biología", "history": "historia",
           "architecture": "arquitectura", "mathematics": "matemáticas", "law": "derecho",
           "medicine": "medicina", "music": "música", "journalism": "periodismo",
           "linguistics": "lingüística", "civil engineering": "ingeniería civil",
           "philosophy": "filosofía", "astronomy": "astronomía", "geology": "geología",
           "statistics": "estadística"},
}

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
MONTHS_FOREIGN = {
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
           "octobre", "novembre", "décembre"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
           "Oktober", "November", "Dezember"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
           "octubre", "noviembre", "diciembre"),
}

COMPANY_STEMS = ("Norvane", "Kestrel", "Ambergate", "Halcyon", "Brightwater", "Corvid", "Lumen", "Stratus",
                 "Ironbridge", "Meridian", "Quillon", "Sablewood", "Tessaract", "Vireo", "Wexford", "Zephyra",
                 "Orbis", "Pinecrest", "Redshore", "Silverline", "Tidewell", "Umbra", "Valemont", "Northgate",
                 "Cobalt", "Ferrous", "Glacier", "Harbor", "Juniper", "Kiln", "Larkspur", "Moraine")
COMPANY_SUFFIXES = ("Systems", "Labs", "Industries", "Holdings", "Analytics", "Biotech", "Logistics",
                    "Energy", "Foods", "Robotics", "Media", "Pharmaceuticals", "Materials", "Software",
                    "Instruments", "Group")
INDUSTRIES = ("software", "biotechnology", "logistics", "renewable energy", "food processing", "robotics",
              "publishing", "pharmaceuticals", "materials science", "semiconductors", "telecommunications",
              "insurance", "shipbuilding", "aerospace", "retail", "consulting")

UNIVERSITY_PATTERNS = ("University of {city}", "{city} Institute of Technology", "{city} State University",
                       "Royal College of {city}", "{city} Polytechnic University")

# Neutral filler sentences that give news and blog pages their own prose around the facts.
NEWS_FILLER = (
    "The announcement was made at a press briefing on Tuesday morning.",
    "Colleagues described the decision as long overdue.",
    "The event drew several hundred visitors from across the region.",
    "Organisers said the programme would continue next year.",
    "Industry analysts expect the move to attract further investment.",
    "The ceremony took place in the main hall of the conference centre.",
    "Local officials welcomed the news in a short statement.",
    "Tickets for the public lecture sold out within a day.",
    "The project has been in planning for almost three years.",
    "A spokesperson declined to comment on the financial details.",
    "The committee praised the clarity and ambition of the work.",
    "Several former students attended the reception afterwards.",
    "The report will be published in full later this month.",
    "Observers noted that the timing coincided with the annual trade fair.",
)
BLOG_FILLER = (
    "I have been meaning to write this post for weeks.",
    "Grab a coffee, this one is a little longer than usual.",
    "Honestly, I did not expect the conversation to go in this direction.",
    "The weather was terrible but the talk was worth it.",
    "Let me know in the comments what you think.",
    "I took far too many notes, so here are the highlights.",
    "It reminded me why I started this blog in the first place.",
    "We ended up chatting for almost two hours.",
    "If you ever get the chance to hear this story in person, take it.",
    "Anyway, back to the main topic.",
    "I will share the slides as soon as I get them.",
    "This was easily the best evening of the month.",
)
FORUM_CHATTER = (
    "anyone else having this problem?", "lol same here", "thx in advance guys", "this thread is gold",
    "not sure if this is the rigth place to ask", "bump", "+1 would also like to know",
    "ok nevermind i figured it out", "mods pls move this thread", "first time poster long time lurker",
    "cant beleive nobody mentioned this yet", "sorry for my bad english", "edit: fixed typo",
    "i think u are rigth about that", "wait what??", "source?", "ngl that is pretty cool",
)

# SEO spam vocabulary
SPAM_KEYWORDS = ("cheap flights", "best price", "buy now", "free shipping", "discount code", "casino bonus",
                 "weight loss pills", "payday loans", "crypto profit", "replica watches", "limited offer",
                 "work from home", "100% guaranteed", "click here")

NSFW_PHRASES = ("hot xxx videos", "free porn clips", "nude webcam girls", "explicit sex scenes",
                "live adult cams", "hardcore porn", "naked amateur sex", "xxx tube",
                "horny singles near you", "uncensored nude photos")

TOXIC_LINES = (
    "you are a stupid idiot and nobody likes you",
    "shut up you worthless moron",
    "what a fucking loser, get lost",
    "this is the dumbest shit i have ever read, you pathetic clown",
    "go to hell you ignorant bastard",
    "you are an ugly brainless jerk",
    "nobody cares about your crap opinion, dumbass",
    "fuck off and die you useless piece of shit",
    "you absolute asshole, learn to read",
    "only a complete imbecile would post this garbage, idiot",
)

FOREIGN_FILLER = {
    "fr": (
        "La ville est connue pour ses marchés animés, ses musées et ses grands parcs.",
        "Chaque été, de nombreux visiteurs viennent découvrir le vieux quartier et ses petites rues.",
        "Selon ses collègues, c'est une personne discrète mais très travailleuse.",
        "Le journal a publié un long entretien la semaine dernière.",
        "Les habitants apprécient la qualité de vie et la proximité de la campagne.",
        "Cette histoire montre bien que la curiosité mène souvent à de belles découvertes.",
        "La conférence a réuni des chercheurs venus de toute l'Europe.",
    ),
    "de": (
        "Die Stadt ist für ihre lebendigen Märkte, ihre Museen und ihre großen Parks bekannt.",
        "Jeden Sommer kommen viele Besucher, um die Altstadt und ihre engen Gassen zu entdecken.",
        "Nach Aussage von Kollegen ist sie eine ruhige, aber äußerst fleißige Persönlichkeit.",
        "Die Zeitung veröffentlichte letzte Woche ein ausführliches Interview.",
        "Die Einwohner schätzen die hohe Lebensqualität und die Nähe zur Natur.",
        "Diese Geschichte zeigt, dass Neugier oft zu überraschenden Entdeckungen führt.",
        "Die Konferenz brachte Forscher aus ganz Europa zusammen.",
    ),
    "es": (
        "La ciudad es conocida por sus mercados animados, sus museos y sus grandes parques.",
        "Cada verano muchos visitantes llegan para descubrir el casco antiguo y sus calles estrechas.",
        "Según sus compañeros, es una persona tranquila pero muy trabajadora.",
        "El periódico publicó una larga entrevista la semana pasada.",
        "Los vecinos valoran la calidad de vida y la cercanía del campo.",
        "Esta historia demuestra que la curiosidad suele llevar a descubrimientos sorprendentes.",
        "La conferencia reunió a investigadores de toda Europa y de América Latina.",
    ),
}
