# Pièces jointes : questions de type fichier (ticket 12).
file-limits = Formats acceptés : { $types }. Au plus { $count } fichiers de { $size } Mo chacun.
file-add = Joindre un fichier
file-remove = Retirer
file-full = Cette question a reçu le nombre maximal de fichiers : retirez-en un pour en joindre un autre.
file-bytes = { $n } octets
file-too-large = { $name } est trop volumineux : chaque fichier peut faire au plus { $max } Mo
file-wrong-type = { $name } n’est pas un document accepté ({ $types }), ou son nom ne correspond pas à son contenu
file-too-many = Joignez au plus { $max } fichiers
file-empty = { $name } est vide
results-files = { $countries } réponses sur { $answered } ont joint des justificatifs ({ $files } fichiers)
results-files-zip = Télécharger les réponses avec tous les fichiers joints (zip)
