"""Function words and very frequent words of the languages onplatform reads, for language.py.

One compact list per language, lower case, separated by spaces; a word may sit in
several lists (its weight is then shared). Elisions keep their apostrophe (``l'``,
``qu'``), English contractions are whole words (``don't``) and suffixes after an
apostrophe start with it (English ``'s``, Turkish ``'tan`` as in ``WhatsApp'tan``).
Arabic and Chinese need no list: their script decides. Kept in code rather than a data file so that
it ships with the package without package-data entries.
"""

from __future__ import annotations

WORDS: dict[str, str] = {
    "en": """
        the a an and or but to of in on at for with from by about as into is are was were be
        i you he she we they it me us them my your our their his her its this that these
        there here what when where why how which who can could will would should may do does
        did have has had not no yes please thanks thank hi hello if so just very then some
        all more only now today tomorrow let's i'm i'll i'd don't can't it's that's we're
        you're need want like get send know think sorry 's 'll 're 've 'm 'd 't zero one two
        three four five six seven eight nine ten
    """,
    "es": """
        el la los las un una de del al en con por para sin sobre entre que y o pero si no sí
        es son está están estoy soy ser fue era ha he has han hay muy más también ya
        aquí como cuando donde qué cómo cuándo dónde porque yo tú usted él ella ellos me te
        se le lo nos les mi mis tu tus su sus nuestro nuestra este esta eso esto ese esa todo todos
        toda gracias hola favor puedes puede podemos podrías quiero necesito tengo tienes
        tiene mañana hoy bien bueno pues entonces después antes ahora nada algo otro otra
        hacer vamos mucho así cero uno dos tres cuatro cinco seis siete ocho nueve diez
    """,
    "pt": """
        o a os as um uma de do da dos das no na nos nas em ao à com por pelo pela para pra
        sem sobre entre até que e ou mas se não sim é são está estão estou sou foi era tem
        tenho há muito muita mais também já aqui como quando onde porque eu você vocês ele
        ela nós eles me te lhe meu minha seu sua nosso este esta isso isto esse essa tudo
        todos obrigado obrigada olá oi favor pode posso podemos poderia quero preciso amanhã
        hoje bem então depois antes agora nada algo outro outra fazer vou vai vamos ainda só
        mesmo tá quanto zero dois três quatro cinco seis sete oito nove dez
    """,
    "fr": """
        le la les un une des du de au aux en dans sur avec pour par sans entre que qui quoi
        et ou mais si ne pas plus non oui est sont suis ai avons avez ont été être avoir
        fait faire très aussi déjà ici comme quand où pourquoi parce je tu il elle nous vous
        ils elles on me te se lui leur mon ma mes ton ta tes son sa notre votre nos vos ce
        cette ces ça cela tout tous merci bonjour salut plaît peux peut pouvez veux voudrais
        demain aujourd'hui bien alors après avant maintenant rien y c' d' j' l' m' n' qu' s'
        zéro deux trois quatre cinq six sept huit neuf dix
    """,
    "de": """
        der die das den dem des ein eine einen einem einer und oder aber wenn dass weil ob
        als wie in im an am auf aus bei mit nach von zu zum zur für über um durch ohne ist
        sind bin bist war waren sein hat habe haben hast wird werden würde kann können
        könnten muss soll will möchte nicht kein keine auch noch schon nur sehr mehr hier
        ich du er sie es wir ihr mich mir dich dir uns ihnen mein meine ihre unser unsere
        bitte danke dank vielen hallo ja nein morgen heute gut dann jetzt was wann wo warum
        doch mal gerne gern sich so null eins zwei drei vier fünf sechs sieben acht neun
        zehn
    """,
    "it": """
        il lo la i gli le un uno una di del della dei delle al alla ai alle nel nella da dal
        in con su per tra fra che e è non ma o se anche come più molto sono sei siamo siete
        ho hai ha abbiamo hanno questo questa quello quella mi ti ci vi si io tu lui lei noi
        voi mio mia tuo suo nostro grazie ciao buongiorno perché quando dove cosa chi già
        ancora sempre qui poi solo tutto tutti fare essere può posso puoi potrebbe vorrei
        domani oggi bene allora dopo prima senza mai sto quanto l' dell' dall' un' all'
        nell' sull' c' po' ed zero due tre quattro cinque sette otto nove dieci
    """,
    "pl": """
        i w we z ze na do od po o u za dla przez przy bez pod nad że czy a ale lub albo jak
        jest są był była być będzie mam masz ma mamy macie mają nie tak też także już
        jeszcze tylko bardzo tu tutaj to ten ta te tego jestem jesteś ja ty on ona my wy oni
        mnie mi ci go jej nas was ich mój moja moje twój twoja pan pani państwo proszę
        dziękuję dzięki cześć dzień dobry można mogę możesz może chcę chciałbym potrzebuję
        jutro dzisiaj dziś się co kiedy gdzie dlaczego który która które jeśli więc bo żeby
        zero jeden dwa trzy cztery pięć sześć siedem osiem dziewięć dziesięć
    """,
    "tr": """
        ve ile bir bu şu o da de ki mi mı mu mü ne için gibi kadar daha çok en ama fakat
        veya ya değil var yok ben sen biz siz onlar beni bana seni sana bize size sizin
        benim senin bizim evet hayır tamam lütfen teşekkür teşekkürler merhaba ederim olan
        olur oldu nasıl neden nerede şimdi yarın bugün sonra önce her hiç sadece yani eğer
        çünkü iyi mısın misin musun müsün mısınız misiniz musunuz istiyorum lazım gerek icin
        cok degil tesekkurler lutfen simdi 'a 'e 'ya 'ye 'da 'de 'ta 'te 'dan 'den 'tan 'ten
        'ı 'i 'u 'ü 'yı 'yi 'ın 'in 'un 'ün 'nın 'nin 'la 'le sıfır iki üç dört beş altı
        yedi sekiz dokuz on
    """,
    "id": """
        yang dan di ke dari untuk dengan ini itu tidak nggak gak enggak ada saya aku kamu
        anda kami kita mereka dia akan sudah udah belum bisa boleh mau ingin harus juga atau
        tapi tetapi karena kalau jika apa apakah bagaimana gimana berapa kapan mana siapa
        sangat lebih sama lagi saja aja ya dong sih nanti sekarang besok hari terima kasih
        tolong silakan mohon lewat sini buat bagi oleh pada dalam setelah sebelum masih baru
        begitu seperti semua banyak biar nol satu dua tiga empat lima enam tujuh delapan
        sembilan sepuluh
    """,
    "tl": """
        ang ng mga sa na ay ko mo ka kita ako ikaw siya kami tayo natin namin nila niya ito
        iyan iyon yung yun dito diyan doon dun lang din rin po opo hindi oo wala may mayroon
        meron para pero kung kasi at ba naman pa nga ano sino saan kailan bakit paano
        magkano gaano pwede puwede gusto salamat kailangan lahat isang si kay ni nang mas
        tulad sige ngayon bukas dati kaya talaga sero isa dalawa tatlo apat lima anim pito
        walo siyam sampu
    """,
    "hi": """
        hai hain tha thi ka ki ke ko se mein main hoon hun hu nahi nahin na kya aap aapka
        aapki aapko tum tumhara tumhe mera meri mere mujhe apna apni kar karo karna karte
        karta karke kaise kyun kyon kab kahan yeh ye woh wo bhi aur par pe toh ho hoga hogi
        gaya gayi diya liye saath abhi sab kuch bahut thoda accha acha theek thik ji bhai
        yaar haan bhejo dena do lo raha rahi rahe sakta sakte sakti wala wali kitna kitne
        lekin jab agar phir humare hamara humara hum iska uska kal aaj chahiye hua ek maine
        aapne hi kaam karunga karenge dunga teen chaar char paanch panch chhe saat aath nau
    """,
    "ru": """
        и в во не на что я с со это как а по но он она они все всё так его её только вы мы
        для мне меня вас вам ваш ваша наш наша мой моя есть уже можно нужно если или
        пожалуйста спасибо здравствуйте привет когда где вот да нет был была было будет
        может очень сейчас сегодня завтра к от до за из у о об про чтобы тоже еще ещё бы
        же ли хорошо давайте этот эта эти тут здесь
    """,
    "uk": """
        і й в у не на що я з зі це як а по але він вона вони все так його її тільки ви ми
        для мені мене вас вам ваш ваша наш наша мій моя є вже можна потрібно треба якщо
        або будь ласка дякую вітаю привіт коли де ось ні був була було буде може дуже
        зараз сьогодні завтра до від за про щоб теж ще б же чи добре давайте цей ця ці тут
    """,
}
"""Per language: its function words and very frequent words."""

LETTERS: dict[str, str] = {
    "ñ¿¡": "es",
    "ãõ": "pt",
    "êô": "pt fr",
    "áíú": "es pt",
    "ó": "es pt pl",
    "é": "es pt fr it",
    "à": "pt fr it",
    "èù": "fr it",
    "ìò": "it",
    "ëïîûœ": "fr",
    "çâ": "pt fr tr",
    "ßä": "de",
    "öü": "de tr",
    "ąćęłńśźż": "pl",
    "ğşı": "tr",
    "іїєґ": "uk",
    "ыэъё": "ru",
}
"""Letters that hint at languages: the letters -> the languages sharing them."""
