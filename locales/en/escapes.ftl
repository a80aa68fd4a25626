# “Not known” and “not applicable”: answers given instead of a value (issue 12).
escape-not-known = Not known
escape-not-applicable = Not applicable
escape-with-reason = { $escape }: { $reason }
escape-legend = Can you answer this question?
escape-answer = Answer
escape-reason = Reason (if not known or not applicable)
escape-reason-required = A reason is required for: { $escapes }.
error-escape-not-allowed = This question does not accept that: give an answer.
error-reason-required = Give a short reason for “not known” or “not applicable”.
error-reason-too-long = Keep the reason to { $max } characters or fewer.
results-not-known = { $count } not known
results-not-applicable = { $count } not applicable
results-escaped-note = “Not known” and “not applicable” answers are counted apart and left out of the percentages, which are of the { $valued } answers with a value.
