from django.apps import AppConfig


class FeedConfig(AppConfig):
    name = "feed"

    def ready(self) -> None:
        from feed import receivers
        from feed.selectors import comment_subject
        from feed.services import comment_remove, comment_restore
        from moderation.hooks import register_subject_action
        from moderation.subjects import register_subject_type

        # Comments are reported through moderation's report API like any other subject, and
        # staff decisions on a comment case act through these.
        register_subject_type("comment", comment_subject)
        register_subject_action(
            "comment",
            remove=lambda *, obj, actor, reason: comment_remove(
                comment=obj, actor=actor, reason=reason
            ),
            restore=lambda *, obj, actor, reason: comment_restore(
                comment=obj, actor=actor, reason=reason
            ),
        )
        receivers.connect()
