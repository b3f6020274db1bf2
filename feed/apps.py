from django.apps import AppConfig


class FeedConfig(AppConfig):
    name = "feed"

    def ready(self) -> None:
        from feed.selectors import comment_subject
        from moderation.subjects import register_subject_type

        # Comments are reported through moderation's report API like any other subject.
        register_subject_type("comment", comment_subject)
