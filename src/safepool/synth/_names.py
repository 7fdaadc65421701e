"""Small built-in lists of first names, family names and street names.

The lists are written for this generator: common-sounding names of each language group, so that
the synthetic population register looks plausible. No real person is meant.
"""

from __future__ import annotations

# Native languages used in the population register, in code order.
LANGUAGES = ["fi", "sv", "ru", "et", "ar", "so", "en", "fa", "ku", "zh", "other"]
LANG = {code: i for i, code in enumerate(LANGUAGES)}

# name group per language (index into the name tables below)
FIRST_MALE = {
    "fi": ["Juha", "Timo", "Matti", "Mikko", "Jari", "Antti", "Jukka", "Markku", "Pekka", "Mika",
           "Ville", "Janne", "Lauri", "Eetu", "Onni", "Elias", "Leo", "Väinö", "Aleksi", "Niko",
           "Tapio", "Kalle", "Oskari", "Eino"],
    "sv": ["Erik", "Johan", "Henrik", "Fredrik", "Anders", "Mats", "Axel", "Oskar", "Viktor", "Nils"],
    "ru": ["Dmitri", "Sergei", "Aleksei", "Ivan", "Andrei", "Nikolai", "Pavel", "Maksim", "Artjom"],
    "et": ["Andres", "Rein", "Margus", "Kristjan", "Toomas", "Priit", "Jaan", "Siim", "Rasmus"],
    "ar": ["Ahmed", "Mohammed", "Ali", "Hassan", "Omar", "Yousef", "Karim", "Mustafa", "Hussein"],
    "so": ["Abdi", "Abdullahi", "Mahad", "Hassan", "Liban", "Guled", "Ayaan", "Mohamed"],
    "en": ["James", "David", "Michael", "Thomas", "Daniel", "Samuel", "Peter", "John"],
    "fa": ["Reza", "Amir", "Hossein", "Farhad", "Mehdi", "Ali", "Navid", "Hamid"],
    "ku": ["Karwan", "Rebin", "Shwan", "Aras", "Dilshad", "Hawre", "Soran"],
    "zh": ["Wei", "Jun", "Hao", "Lei", "Ming", "Qiang", "Yong", "Tao"],
    "other": ["Minh", "Tuan", "Raj", "Arjun", "Oleksandr", "Andriy", "Jose", "Bikash", "Somchai",
              "Emre"],
}
FIRST_FEMALE = {
    "fi": ["Anna", "Maria", "Tuula", "Päivi", "Sari", "Anne", "Minna", "Kaisa", "Laura", "Emilia",
           "Aino", "Sofia", "Helmi", "Ella", "Venla", "Johanna", "Riikka", "Noora", "Eveliina",
           "Heidi", "Satu", "Liisa", "Aada", "Kerttu"],
    "sv": ["Elsa", "Ebba", "Linnea", "Ida", "Karin", "Sara", "Matilda", "Alva", "Stina", "Frida"],
    "ru": ["Olga", "Natalia", "Irina", "Svetlana", "Anastasia", "Jelena", "Tatjana", "Darja"],
    "et": ["Kadri", "Liis", "Triin", "Maarja", "Kristiina", "Piret", "Kertu", "Helen"],
    "ar": ["Fatima", "Aisha", "Zainab", "Noor", "Mariam", "Layla", "Huda", "Rana", "Salma"],
    "so": ["Hodan", "Amina", "Ifrah", "Sahra", "Hibo", "Nasra", "Farhiya", "Ayan"],
    "en": ["Emily", "Sarah", "Emma", "Olivia", "Grace", "Hannah", "Lucy", "Rachel"],
    "fa": ["Zahra", "Maryam", "Shirin", "Parisa", "Leila", "Nasrin", "Roya", "Mina"],
    "ku": ["Shilan", "Rozhin", "Nazdar", "Avin", "Berivan", "Jwan", "Hana"],
    "zh": ["Li", "Mei", "Xiu", "Yan", "Jing", "Fang", "Ling", "Hui"],
    "other": ["Linh", "Priya", "Oksana", "Maria", "Anjali", "Mai", "Kateryna", "Ana", "Sunita",
              "Elif"],
}
FAMILY = {
    "fi": ["Korhonen", "Virtanen", "Mäkinen", "Nieminen", "Mäkelä", "Hämäläinen", "Laine",
           "Heikkinen", "Koskinen", "Järvinen", "Lehtonen", "Lehtinen", "Saarinen", "Salminen",
           "Heinonen", "Niemi", "Heikkilä", "Kinnunen", "Salonen", "Turunen", "Rantanen", "Laitinen",
           "Karjalainen", "Tuominen", "Hiltunen", "Lindroos"],
    "sv": ["Lindqvist", "Nyström", "Lindholm", "Sjöberg", "Holmström", "Grönroos", "Wikström",
           "Forsman", "Blomqvist", "Sundström", "Ekholm", "Åberg"],
    "ru": ["Ivanov", "Smirnov", "Kuznetsov", "Popov", "Sokolov", "Petrov", "Volkov", "Morozov"],
    "et": ["Tamm", "Saar", "Sepp", "Mägi", "Kask", "Kukk", "Rebane", "Ilves", "Pärn"],
    "ar": ["Hassan", "Ibrahim", "Abdullah", "Khalil", "Saleh", "Mahmoud", "Haddad", "Jaber"],
    "so": ["Warsame", "Farah", "Jama", "Omar", "Abdi", "Hirsi", "Yusuf", "Egal"],
    "en": ["Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Walker", "Wright"],
    "fa": ["Ahmadi", "Hosseini", "Karimi", "Rahimi", "Mohammadi", "Rezaei", "Moradi", "Jafari"],
    "ku": ["Ahmed", "Karim", "Rashid", "Aziz", "Mustafa", "Salih", "Qadir"],
    "zh": ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang"],
    "other": ["Nguyen", "Tran", "Sharma", "Patel", "Kovalenko", "Shevchenko", "Santos", "Reyes",
              "Gurung", "Thapa", "Yilmaz", "Pham"],
}

STREET_STEMS = [
    "Kivi", "Koivu", "Mänty", "Kuusi", "Haapa", "Leppä", "Pihlaja", "Tammi", "Vaahtera", "Kallio",
    "Niitty", "Pelto", "Mäki", "Ranta", "Lahden", "Järven", "Tuuli", "Aamu", "Ilta", "Kataja",
    "Karhu", "Ketun", "Majava", "Otso", "Saaren", "Niemen", "Sepän", "Myllyn", "Kaivo", "Puro",
    "Lähde", "Sammal", "Kanerva", "Suvi", "Kevät", "Talvi", "Revontulen", "Tähti", "Kuu", "Päivän",
    "Lokki", "Kurki", "Joutsen", "Peippo", "Tiainen", "Orava", "Hirvi", "Ilves", "Kettu", "Kaisla",
]
STREET_SUFFIXES = ["tie", "tie", "tie", "kuja", "polku", "katu", "rinne", "kaari", "ranta"]
