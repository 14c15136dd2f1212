"""Google's Gemini API as an upstream: request, response, stream and their shared mapping."""
