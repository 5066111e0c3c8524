"""Talking to chat models: an OpenAI-compatible client with retries, cache and audit (``client``), its stores
(``store``, ``dbstore``), and extracting programs from answers (``extraction``, which does not import ``openai``)."""
