# Cycles (issue 13) : réponses reprises du cycle précédent, confirmées ou modifiées.
rounds-from-previous = Reprise du cycle précédent
rounds-changed = Modifiée depuis le cycle précédent
rounds-previous-answer = Réponse au cycle précédent :
rounds-no-answer = (pas de réponse)
rounds-still-accurate = Toujours exacte
rounds-section-to-confirm = Réponses reprises du cycle précédent à confirmer dans cette section : { $count }. Cochez « Toujours exacte » ou modifiez la réponse, puis enregistrez.
rounds-section-carried = Réponses reprises du cycle précédent dans cette section et pas encore confirmées : { $count }. Vérifiez qu’elles sont toujours exactes.
rounds-confirm-section = Toutes les réponses non modifiées de cette section reprises du cycle précédent sont toujours exactes ({ $count } restantes)
rounds-overview-to-confirm = { $count } à confirmer
rounds-overview-total = Réponses reprises du cycle précédent encore à confirmer : { $count }. Chacune doit être confirmée « toujours exacte » ou modifiée avant l’envoi de la réponse.
rounds-review-unconfirmed = Ces réponses reprises du cycle précédent doivent être confirmées « toujours exactes » ou modifiées :
