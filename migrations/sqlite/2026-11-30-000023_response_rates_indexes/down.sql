DROP INDEX responses_rates;
DROP INDEX access_tokens_opened;
