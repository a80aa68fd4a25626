# Archivos adjuntos: preguntas de tipo archivo (incidencia 12).
file-limits = Formatos aceptados: { $types }. Como máximo { $count } archivos de { $size } MB cada uno.
file-add = Adjuntar un archivo
file-remove = Quitar
file-full = Esta pregunta ya tiene el número máximo de archivos: quite uno para adjuntar otro.
file-bytes = { $n } bytes
file-too-large = { $name } es demasiado grande: cada archivo puede tener como máximo { $max } MB
file-wrong-type = { $name } no es un documento aceptado ({ $types }), o su nombre no corresponde a su contenido
file-too-many = Adjunte como máximo { $max } archivos
file-empty = { $name } está vacío
results-files = { $countries } de { $answered } respuestas adjuntaron documentos ({ $files } archivos)
results-files-zip = Descargar las respuestas con todos los archivos adjuntos (zip)
