# La définition d'une enquête a changé pendant le cycle (ticket 13).
definition-changed-notice = Le questionnaire a été modifié après l'enregistrement de certaines de vos réponses : une question, une option ou une condition dont elles dépendent est différente. Veuillez revoir ces sections et les enregistrer :
