"""Charts and the shareable report of a run: plotly figure builders (``charts``) used by the
dashboard's Summary and Run pages and by ``ogad report`` (``report``). Torch-free and
Streamlit-free; every chart is a view of data the run already holds."""
