"""The portal's pages, one module per part of the registry a user looks at."""
