"""`srgan serve`: a local web page and JSON API for upscaling images.

`app.create_app(engine, settings)` builds the FastAPI application (routes, upload checks, error
format); `engine.UpscaleEngine` holds the models a request may name and upscales one image;
`jobs.JobQueue` runs the jobs one at a time on a worker thread and expires old results. The page is
plain HTML/CSS/JS under `static/`, served by the app itself. Importing this package loads no web
framework: the modules are imported by `srgan serve` when it starts.
"""
