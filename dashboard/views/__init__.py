"""Page files for ``st.navigation`` (each one calls a page module's ``render()``)."""
