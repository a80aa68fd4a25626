# «Se desconoce» y «no procede»: respuestas dadas en lugar de un valor (incidencia 12).
escape-not-known = Se desconoce
escape-not-applicable = No procede
escape-with-reason = { $escape }: { $reason }
escape-legend = ¿Puede responder a esta pregunta?
escape-answer = Respuesta
escape-reason = Motivo (si se desconoce o no procede)
escape-reason-required = Se requiere un motivo para: { $escapes }.
error-escape-not-allowed = Esta pregunta no admite esa opción: dé una respuesta.
error-reason-required = Indique brevemente por qué se desconoce la respuesta o no procede.
error-reason-too-long = El motivo no debe superar los { $max } caracteres.
results-not-known = { $count } «se desconoce»
results-not-applicable = { $count } «no procede»
results-escaped-note = Las respuestas «se desconoce» y «no procede» se cuentan aparte y no entran en los porcentajes, calculados sobre las { $valued } respuestas con un valor.
