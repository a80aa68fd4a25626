# Attachments: file questions (issue 12).
file-limits = Accepted: { $types }. At most { $count } files of { $size } MB each.
file-add = Attach a file
file-remove = Remove
file-full = The most files this question takes are attached: remove one to attach another.
file-bytes = { $n } bytes
file-too-large = { $name } is too large: each file may be at most { $max } MB
file-wrong-type = { $name } is not an accepted document ({ $types }), or its name does not match its content
file-too-many = Attach at most { $max } files
file-empty = { $name } is empty
results-files = { $countries } of { $answered } responses attached evidence ({ $files } files)
results-files-zip = Download the responses with every attached file (zip)
