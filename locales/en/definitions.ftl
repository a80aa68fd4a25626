# A survey's definition changed while the round is open (issue 13).
definition-changed-notice = The questionnaire was changed after some of your answers were saved: a question, an option or a condition they rely on is different now. Please look at these sections again and save them:
