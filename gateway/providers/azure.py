"""Azure OpenAI: OpenAI's wire format at deployment URLs, with api-version and an api-key header."""

from __future__ import annotations

from urllib.parse import quote

from gateway.providers.openai import OpenAIAdapter


class AzureAdapter(OpenAIAdapter):
    """The model id is the deployment name; it picks the model, whatever the body says.

    base_url is the resource, e.g. https://myres.openai.azure.com; the path is
    /openai/deployments/{deployment}/chat/completions?api-version=…
    (docs/wire-formats.md#azure-deployment-urls). Azure's empty-choices filter chunks are handled
    by the OpenAI translator like any other.
    """

    def url(self, upstream_model: str, operation: str) -> str:
        path = self.provider.path(operation, self.default_paths[operation])
        deployment = quote(upstream_model, safe="")
        return (
            f"{self.provider.base_url}/openai/deployments/{deployment}{path}"
            f"?api-version={quote(self.provider.api_version, safe='')}"
        )
