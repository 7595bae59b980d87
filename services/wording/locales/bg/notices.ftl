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
