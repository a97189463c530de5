"""`avdiff serve`: a web page over the pipeline (Gradio) to try a model by listening and looking.

`handlers` holds the work as plain functions (no Gradio); `app` lays out the page and needs the
`serve` extra (`pip install 'avdiff[serve]'`).
"""
