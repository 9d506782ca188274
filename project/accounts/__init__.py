"""The site's accounts: API tokens, a user's language, and throttling of logins, password resets and the API."""
