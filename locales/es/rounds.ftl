# Rondas (issue 13): respuestas trasladadas de la ronda anterior, confirmadas o cambiadas.
rounds-from-previous = De la ronda anterior
rounds-changed = Cambiada desde la ronda anterior
rounds-previous-answer = Respuesta en la ronda anterior:
rounds-no-answer = (sin respuesta)
rounds-still-accurate = Sigue siendo exacta
rounds-section-to-confirm = Respuestas de la ronda anterior por confirmar en esta sección: { $count }. Marque «Sigue siendo exacta» o cambie la respuesta y guarde.
rounds-section-carried = Respuestas de la ronda anterior en esta sección aún sin confirmar: { $count }. Compruebe que siguen siendo exactas.
rounds-confirm-section = Todas las respuestas sin cambios de esta sección que vienen de la ronda anterior siguen siendo exactas (quedan { $count })
rounds-overview-to-confirm = { $count } por confirmar
rounds-overview-total = Respuestas de la ronda anterior aún por confirmar: { $count }. Cada una debe confirmarse como «sigue siendo exacta» o cambiarse antes de enviar la respuesta.
rounds-review-unconfirmed = Estas respuestas de la ronda anterior deben confirmarse como «sigue siendo exactas» o cambiarse:
