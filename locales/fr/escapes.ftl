# « Inconnu » et « sans objet » : réponses données à la place d'une valeur (ticket 12).
escape-not-known = Inconnu
escape-not-applicable = Sans objet
escape-with-reason = { $escape } : { $reason }
escape-legend = Pouvez-vous répondre à cette question ?
escape-answer = Réponse
escape-reason = Motif (si inconnu ou sans objet)
escape-reason-required = Un motif est requis pour : { $escapes }.
error-escape-not-allowed = Cette question n’accepte pas ce choix : donnez une réponse.
error-reason-required = Indiquez brièvement pourquoi la réponse est inconnue ou sans objet.
error-reason-too-long = Le motif ne doit pas dépasser { $max } caractères.
results-not-known = { $count } « inconnu »
results-not-applicable = { $count } « sans objet »
results-escaped-note = Les réponses « inconnu » et « sans objet » sont comptées à part et exclues des pourcentages, calculés sur les { $valued } réponses ayant une valeur.
