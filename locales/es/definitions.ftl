# La definición de una encuesta cambió durante la ronda (ticket 13).
definition-changed-notice = El cuestionario se modificó después de guardar algunas de sus respuestas: una pregunta, una opción o una condición de la que dependen es distinta. Revise estas secciones y guárdelas de nuevo:
