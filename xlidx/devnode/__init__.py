"""The local development node: OpenSearch from Maven Central (plus Redis), without Docker."""
