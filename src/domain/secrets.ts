/**
 * Shortest value the configuration may declare secret (the API token, a provider header): such
 * values are cut out of every message, event and report exactly (src/forensics/redact.ts), and a
 * 3-character value ("abc", "v1") occurs in ordinary words and numbers too often for that. A shorter
 * one is a configuration error naming its key (src/config/fields.ts).
 */
export const MIN_CONFIGURED_SECRET_LENGTH = 4;
