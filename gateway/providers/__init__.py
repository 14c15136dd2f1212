"""Provider adapters: pure translators between OpenAI's wire format and each upstream's."""
