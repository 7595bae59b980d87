# The notices of the exchange, in Bulgarian: worded from a notice's facts when it is shown or sent, the same
# in the inbox, the e-mail and the web app. Every message takes the same variables as its English twin.

notice-submitted-title = Ново направление № { $reference }: потвърдете получаването до { $deadline }
notice-submitted-body = Направление № { $reference } от { $sender } ({ $from }) иска { $places ->
        [one] едно място
       *[other] { $places } места
    } в { $service } ({ $district }). Моля, потвърдете получаването до { $deadline }; след това доставчикът приема или отказва.
notice-acknowledged-title = Направление № { $reference }: получаването е потвърдено
notice-acknowledged-body = { $agency } потвърди получаването на направление № { $reference }.
notice-accepted-title = Направление № { $reference } е прието
notice-accepted-body = { $service } прие направление № { $reference } и задържа { $places ->
        [one] едно място
       *[other] { $places } места
    }. Потвърдете настаняването, когато децата пристигнат.
notice-declined-title = Направление № { $reference } е отказано
notice-declined-body = { $service } отказа направление № { $reference }. Причина: { $reason }. Можете да насочите случая към друга услуга.
notice-withdrawn-title = Направление № { $reference } е оттеглено
notice-withdrawn-body = { $sender } оттегли направление № { $reference }. Причина: { $reason }. Задържаните места се освобождават.
notice-placed-title = Направление № { $reference }: децата са настанени
notice-placed-body = { $sender } потвърди настаняването по направление № { $reference } в { $service }; { $places ->
        [one] едно място вече е заето
       *[other] { $places } места вече са заети
    }.
notice-escalated-title = Направление № { $reference } е ескалирано: { $step } е просрочено
notice-escalated-body = Срокът за { $step } по направление № { $reference } до { $service } ({ $district }) изтече на { $deadline }, без стъпката да е направена.
notice-reminder-title = Напомняне: направление № { $reference } чака { $step } до { $deadline }
notice-reminder-body = Изтече половината от срока за { $step } по направление № { $reference } ({ $service }, { $district }), а вашата агенция още не е направила тази стъпка. Срок: { $deadline }.
notice-court-due-title = Направление № { $reference }: подайте молба до съда до { $due }
notice-court-due-body = Заповедта на директора от { $order }, на която се основава направление № { $reference }, е отпреди три седмици, а съдебно решение не е вписано. Законът дава един месец за молбата до съда: до { $due }. Впишете решението в направлението, когато съдът се произнесе.
notice-court-recorded-title = Направление № { $reference }: вписано е съдебно решение
notice-court-recorded-body = { $sender } вписа съдебното решение по направление № { $reference }.
notice-step-title = Направление № { $reference }: нова стъпка
notice-step-body = По направление № { $reference } има нова стъпка. Отворете направлението, за да я видите.

# Who or what a notice names when the name is not known (yet): in the middle of a sentence, lower case.
notice-unknown-sender = изпращащата дирекция
notice-unknown-agency = една от страните
notice-unknown-service = услугата

notice-decline-at-capacity = няма свободни места
notice-decline-needs-not-met = потребностите на децата не могат да бъдат посрещнати
notice-decline-age-out-of-range = извън възрастовия обхват на услугата
notice-decline-siblings-cannot-be-kept-together = братята и сестрите не могат да останат заедно
notice-withdraw-placed-elsewhere = децата са настанени другаде
notice-withdraw-reintegrated = децата са върнати в семейството
notice-withdraw-court-decision = съдът реши друго
notice-withdraw-submitted-in-error = изпратено по грешка
notice-reason-other = друга причина

# At the end of an e-mail, before its link.
notice-open-referral = Отворете направлението

notice-arrived-title = Направление № { $reference }: децата пристигнаха
notice-arrived-body = { $service } отбеляза пристигането на децата по направление № { $reference }.
notice-postponed-title = Направление № { $reference }: { $step } е отложено до { $deadline }
notice-postponed-body = { $agency } отложи { $step } по направление № { $reference }. Причина за изчакване: { $waiting }{ $until ->
        [none] {""}
       *[other] {" "}(до { $until })
    }. Нов срок: { $deadline }.

# The steps of a referral, as a sentence names them (every one neuter, so "е просрочено" fits each).
notice-step-acknowledgement = потвърждението за получаване
notice-step-decision = решението (приемане или отказ)
notice-step-confirmation = потвърждаването на настаняването
notice-step-arrival = отбелязването на пристигането

notice-waiting-assessment-under-way = потребностите на децата се оценяват
notice-waiting-documents-missing = липсват документи
notice-waiting-place-freeing = място ще се освободи
notice-waiting-awaiting-court = чака се решение на съда

# A district's digest before its coordination mechanism meets (the figures' names come from their own
# catalogue, placement_model::figures, as the figures page shows them).
digest-title = Обобщение за { $district } преди заседанието на механизма: { $stalled ->
        [0] няма блокирани направления
        [one] { $stalled } блокирано направление
       *[other] { $stalled } блокирани направления
    }
# No full stop: the day ends in «г.».
digest-period = { $district }, { $start } – { $end }
digest-as-receiver = Към услуги в областта
digest-as-sender = Изпратени от областта
digest-durations = медиана { $median }, 9 от 10 до { $p90 }, най-бавно { $slowest } ({ $count ->
        [one] { $count } направление
       *[other] { $count } направления
    })
digest-none-yet = още няма
digest-none-stalled = Няма блокирани направления.
digest-stalled-heading = Блокирани сега (стъпка след срока си), най-старите първо:
digest-stalled = № { $reference } ({ $from } → { $to }): { $step }, срок { $deadline }{ $holders ->
        [none] {""}
       *[other] {"; "}чака се: { $holders }
    }
digest-unnamed-agencies = { $count ->
        [one] една агенция
       *[other] { $count } агенции
    }
digest-free-elsewhere = свободни места другаде: { $places }
digest-free-place = { $service ->
        [none] { $district }: { $free }
       *[other] { $service } ({ $district }): { $free }
    }
digest-more = Още { $count } — вижте показателите.
# At the end of the digest's e-mail, before its link.
digest-open-figures = Отворете показателите на областта

# A search whose round ran out, named by the references of its referrals.
search-named = { $first ->
        [none] търсенето
       *[other] { $others ->
            [0] търсенето по направление № { $first }
           *[other] търсенето по направления № { $first } и още { $others }
        }
    }
search-exhausted-title = { search-named } остана без място
search-exhausted-body = Всички направления от кръг { $round } на { search-named } са отказани, оттеглени или с изтекъл срок. { $fitting ->
        [0] Сега няма подходящи услуги със свободни места.
       *[other] Подходящи услуги със свободни места сега: { $fitting }. Можете да им изпратите нов кръг на търсенето с една стъпка.
    }{ $others ->
        [0] {""}
       *[other] {" "}Направленията на търсенето: { $references }.
    }
# At the end of the e-mail, before its link.
search-open-case = Отворете случая

# One of the agency's e-mail addresses or webhooks kept failing and was disabled.
endpoint-disabled-title = Канал за известяване е изключен: { $address }
endpoint-disabled-body = Доставките до { $address } не успяваха (последна грешка: { $reason }), затова каналът е изключен. Отстранете проблема и го включете отново в регистъра; операторът може да изпрати неуспелите доставки повторно.
