"""The words fake values are made of, picked by the keyed hash of the real value (masks.py): the
same real value gives the same fake one on every pull with the same key. Invented for the kit
(common given names and surnames, Japanese prefectures and place-name parts); no real person's
record."""

from __future__ import annotations

FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Betty", "Mark", "Sandra",
    "Donald", "Ashley", "Steven", "Emily", "Paul", "Donna", "Andrew", "Michelle", "Joshua", "Carol",
    "Kenneth", "Amanda", "Kevin", "Melissa", "Brian", "Deborah", "George", "Stephanie", "Timothy",
    "Rebecca", "Ronald", "Laura", "Edward", "Sharon", "Jason", "Cynthia", "Jeffrey", "Kathleen",
    "Ryan", "Amy", "Jacob", "Angela", "Gary", "Helen", "Nicholas", "Anna",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
    "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott",
    "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera",
    "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans", "Turner", "Diaz",
    "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris", "Morales", "Murphy",
)  # fmt: skip
FIRST_NAMES_JA = (
    "翔太", "蓮", "大翔", "悠真", "陽翔", "湊", "樹", "颯太", "大和", "陸", "悠人", "健太", "拓海",
    "亮", "直樹", "誠", "和也", "達也", "浩二", "隆", "陽菜", "結衣", "葵", "凛", "さくら", "美咲",
    "愛", "七海", "彩花", "優花", "真由美", "恵子", "由美", "裕子", "智子", "直美", "陽子", "花子",
    "芽依", "杏",
)  # fmt: skip
LAST_NAMES_JA = (
    "佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山田",
    "佐々木", "山口", "松本", "井上", "木村", "林", "斎藤", "清水", "山崎", "森", "池田", "橋本",
    "阿部", "石川", "山下", "中島", "石井", "小川", "前田", "岡田", "長谷川", "藤田", "後藤", "近藤",
    "村上", "遠藤", "青木", "坂本",
)  # fmt: skip
STREETS = (
    "Oak", "Maple", "Cedar", "Pine", "Elm", "Washington", "Lake", "Hill", "Park", "Main", "Church",
    "High", "Mill", "River", "Spring", "Sunset", "Walnut", "Willow", "Chestnut", "Meadow",
)  # fmt: skip
STREET_KINDS = ("St", "Ave", "Rd", "Ln", "Dr", "Ct", "Way", "Pl")
CITIES = (
    "Springfield", "Riverside", "Franklin", "Greenville", "Bristol", "Clinton", "Fairview",
    "Salem", "Madison", "Georgetown", "Arlington", "Ashland", "Dover", "Oxford", "Jackson",
    "Burlington", "Manchester", "Milton", "Newport", "Auburn",
)  # fmt: skip
PREFECTURES_JA = (
    "東京都", "神奈川県", "大阪府", "愛知県", "埼玉県", "千葉県", "兵庫県", "北海道", "福岡県", "静岡県",
    "茨城県", "広島県", "京都府", "宮城県", "新潟県", "長野県",
)  # fmt: skip
CITIES_JA = (
    "中央区", "北区", "南区", "東区", "西区", "緑区", "青葉区", "港北区", "若葉市", "桜台市", "朝日市",
    "本町市", "みどり市", "旭市", "栄町", "錦町",
)  # fmt: skip
TOWNS_JA = (
    "本町", "栄町", "旭町", "緑町", "桜木町", "若葉", "幸町", "新町", "寿町", "松が丘", "梅が丘",
    "日の出町", "春日", "大和町", "昭和町", "平和町",
)  # fmt: skip
COMPANIES = (
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Wonka",
    "Tyrell", "Soylent", "Cyberdyne", "Aperture", "Gringotts", "Monarch", "Oscorp",
)  # fmt: skip
COMPANY_KINDS = ("Inc", "LLC", "Ltd", "Co", "Group", "Holdings")
