"""The parity audit of third-party deploy forms (`bench verify --models 'timm:*'`): this package's
`to_deploy` and the library's own recipe, each against the training form in float64, with what each left
unfolded. `audit` measures one model, `document` writes the CSV and the Markdown, `command` is `bench verify`.
"""
