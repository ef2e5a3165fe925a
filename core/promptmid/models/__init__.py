"""Neural building blocks of the PromptMID descriptor (torch; imported only by learned engines)."""
