# Rounds (issue 13): answers carried from the previous round, confirmed or changed.
rounds-from-previous = From the previous round
rounds-changed = Changed since the previous round
rounds-previous-answer = Answer in the previous round:
rounds-no-answer = (no answer)
rounds-still-accurate = Still accurate
rounds-section-to-confirm = Answers carried from the previous round still to confirm in this section: { $count }. Tick "Still accurate" or change the answer, then save.
rounds-section-carried = Answers carried from the previous round in this section and not yet confirmed: { $count }. Check that they are still accurate.
rounds-confirm-section = All unchanged answers of this section that came from the previous round are still accurate ({ $count } left)
rounds-overview-to-confirm = { $count } to confirm
rounds-overview-total = Answers carried from the previous round still to confirm: { $count }. Each must be confirmed "still accurate" or changed before the response is submitted.
rounds-review-unconfirmed = These answers carried from the previous round must be confirmed "still accurate" or changed:
