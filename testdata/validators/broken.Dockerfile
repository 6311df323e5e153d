# A Dockerfile with common mistakes: validate/hadolint_test.go checks that the
# Dockerfile linter reports each, with its line.
FROM debian:latest
RUN apt-get update && apt-get install -y curl
WORKDIR /app
RUN cd /tmp && curl -o x https://example.invalid/x
